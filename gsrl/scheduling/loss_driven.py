"""Policies that choose properties from the query losses they observe: greedy hardest-first, UCB1,
a learning-progress curriculum and Thompson sampling. None has parameters; each keeps per-property
statistics in its state so a resumed run continues exactly."""

from __future__ import annotations

import math

import numpy as np
import torch

from gsrl.errors import ConfigError
from gsrl.scheduling.config import SchedulerConfig
from gsrl.scheduling.interface import Decision, Feedback, plackett_luce_sample, selection_entropy, valid_pairs


class _PropertyStatsPolicy:
    """Shared bookkeeping for policies that score pool properties from their past query losses."""

    learnable = False
    NAME = ""
    DEFAULTS: dict[str, float] = {}

    def __init__(self, config: SchedulerConfig, embedding_dim: int):
        self.config = config
        self.options = _options(config, self.DEFAULTS, self.NAME)
        if not 0 < self.options["decay"] <= 1:
            raise ConfigError(f"scheduler.options.decay must be in (0, 1], got {self.options['decay']}")
        self.loss_mean: dict[int, float] = {}
        self.visits: dict[int, int] = {}
        self.total_visits = 0

    def scores(self, properties: list[int]) -> np.ndarray:
        raise NotImplementedError

    def act(self, observation: dict, rng: np.random.Generator, iteration: int) -> Decision:
        valid = valid_pairs(observation)
        properties = [int(p) for p in np.asarray(observation["properties"])[valid]]
        scores = self.scores(properties)
        order = np.lexsort((rng.permutation(len(valid)), -scores))[: self.config.pairs]  # ties broken at random
        full = np.zeros(len(observation["mask"]) // 2)
        full[valid[order]] = 1.0
        return Decision(valid[order].astype(np.int64), None, full, 0.0)

    def observe(self, feedback: Feedback) -> None:
        decay = self.options["decay"]
        for prop, loss in feedback.query_losses.items():
            previous = self.loss_mean.get(prop)
            self.loss_mean[prop] = loss if previous is None else (1 - decay) * previous + decay * loss
            self.visits[prop] = self.visits.get(prop, 0) + 1
            self.total_visits += 1

    def state_dict(self) -> dict:
        return {"loss_mean": dict(self.loss_mean), "visits": dict(self.visits), "total_visits": self.total_visits}

    def load_state_dict(self, state: dict) -> None:
        self.loss_mean = {int(k): v for k, v in state["loss_mean"].items()}
        self.visits = {int(k): v for k, v in state["visits"].items()}
        self.total_visits = state["total_visits"]


class HardestFirstPolicy(_PropertyStatsPolicy):
    """Greedy curriculum: the pool properties with the highest recent query loss (unseen ones first)."""

    NAME = "hardest"
    DEFAULTS = {"decay": 0.3}

    def scores(self, properties: list[int]) -> np.ndarray:
        return np.array([self.loss_mean.get(p, math.inf) for p in properties], dtype=float)


class UCBPolicy(_PropertyStatsPolicy):
    """UCB1 bandit over properties, reward = recent query loss: exploit hard properties, explore rare ones."""

    NAME = "ucb"
    DEFAULTS = {"decay": 0.3, "exploration": 1.0}

    def scores(self, properties: list[int]) -> np.ndarray:
        c = self.options["exploration"]
        log_total = math.log(max(self.total_visits, 1))
        return np.array([math.inf if p not in self.visits
                         else self.loss_mean[p] + c * math.sqrt(log_total / self.visits[p]) for p in properties])


def _options(config: SchedulerConfig, defaults: dict[str, float], policy: str) -> dict[str, float]:
    """The policy's `scheduler.options`, defaults filled in; an unknown key or a non-number is a ConfigError."""
    unknown = sorted(set(config.options) - set(defaults))
    if unknown:
        raise ConfigError(f"scheduler.options: {', '.join(unknown)} unknown to the '{policy}' policy "
                          f"(it takes {', '.join(sorted(defaults))})")
    options = {**defaults, **config.options}
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"scheduler.options.{key} must be a finite number, got {value!r}")
    return {key: float(value) for key, value in options.items()}


class LearningProgressPolicy:
    """Learning-progress curriculum (after Graves et al. 2017): favour the properties whose query loss is
    falling fastest, where meta-training is currently making progress.

    A property's progress is its slow minus its fast exponential moving average of query loss (positive
    while the loss falls). Pairs are drawn without replacement from (1 - epsilon) * softmax(progress /
    (temperature * spread)) + epsilon * uniform, where spread is the standard deviation of progress over
    the pool, so `temperature` has no unit; a property not yet seen gets the pool's highest progress, so
    every property is tried early. Options: fast (0.5) and slow (0.1) EMA weights, temperature (1),
    epsilon (0.1)."""

    learnable = False
    DEFAULTS = {"fast": 0.5, "slow": 0.1, "temperature": 1.0, "epsilon": 0.1}

    def __init__(self, config: SchedulerConfig, embedding_dim: int):
        self.config = config
        self.options = _options(config, self.DEFAULTS, "learning-progress")
        if not 0 < self.options["slow"] < self.options["fast"] <= 1:
            raise ConfigError("scheduler.options: learning-progress needs 0 < slow < fast <= 1, got "
                              f"slow={self.options['slow']}, fast={self.options['fast']}")
        if self.options["temperature"] <= 0 or not 0 <= self.options["epsilon"] <= 1:
            raise ConfigError("scheduler.options: learning-progress needs temperature > 0 and 0 <= epsilon <= 1")
        self.fast: dict[int, float] = {}
        self.slow: dict[int, float] = {}

    def progress(self, properties: list[int]) -> np.ndarray:
        """Slow minus fast loss average per property; the highest seen for a property not seen yet."""
        seen = [self.slow[p] - self.fast[p] for p in properties if p in self.fast]
        unseen = max(seen, default=0.0)
        return np.array([self.slow[p] - self.fast[p] if p in self.fast else unseen for p in properties])

    def probabilities(self, properties: list[int]) -> np.ndarray:
        progress = self.progress(properties)
        spread = float(progress.std())
        logits = (progress - progress.max()) / (self.options["temperature"] * spread) if spread > 0 else 0 * progress
        boltzmann = np.exp(logits) / np.exp(logits).sum()
        return (1 - self.options["epsilon"]) * boltzmann + self.options["epsilon"] / len(properties)

    def act(self, observation: dict, rng: np.random.Generator, iteration: int) -> Decision:
        valid = valid_pairs(observation)
        properties = [int(p) for p in np.asarray(observation["properties"])[valid]]
        probabilities = self.probabilities(properties)
        picks, _ = plackett_luce_sample(torch.as_tensor(probabilities), min(self.config.pairs, len(valid)), rng)
        full = np.zeros(len(observation["mask"]) // 2)
        full[valid] = probabilities
        return Decision(valid[picks], None, full, selection_entropy(probabilities))

    def observe(self, feedback: Feedback) -> None:
        for prop, loss in feedback.query_losses.items():
            if prop not in self.fast:
                self.fast[prop] = self.slow[prop] = loss
            else:
                self.fast[prop] += self.options["fast"] * (loss - self.fast[prop])
                self.slow[prop] += self.options["slow"] * (loss - self.slow[prop])

    def state_dict(self) -> dict:
        return {"fast": dict(self.fast), "slow": dict(self.slow)}

    def load_state_dict(self, state: dict) -> None:
        self.fast = {int(k): v for k, v in state["fast"].items()}
        self.slow = {int(k): v for k, v in state["slow"].items()}


class ThompsonSamplingPolicy:
    """Discounted Gaussian Thompson sampling over properties: pick the properties most likely to be hardest.

    Each property's query loss is modelled as normal with unknown mean; the mean's posterior has a
    prior centred on the mean of all losses seen, worth `prior_count` observations, and the observation
    variance is the variance of all losses seen. Each meta-iteration draws one mean per pool property
    from its posterior and takes the B largest, so a property is explored in proportion to how
    uncertain its loss still is. Every observation first multiplies all evidence by `discount`, because
    losses fall as the model learns and old evidence goes stale. Options: discount (0.95),
    prior_count (1)."""

    learnable = False
    DEFAULTS = {"discount": 0.95, "prior_count": 1.0}
    MONTE_CARLO_DRAWS = 256  # posterior draws that estimate the selection probabilities shown in telemetry

    def __init__(self, config: SchedulerConfig, embedding_dim: int):
        self.config = config
        self.options = _options(config, self.DEFAULTS, "thompson")
        if not 0 < self.options["discount"] <= 1 or self.options["prior_count"] <= 0:
            raise ConfigError("scheduler.options: thompson needs 0 < discount <= 1 and prior_count > 0")
        self.count: dict[int, float] = {}  # discounted number of observations per property
        self.total: dict[int, float] = {}  # discounted sum of their losses
        self.moments = [0.0, 0.0, 0.0]  # discounted count, sum and sum of squares over all properties

    def posterior(self, properties: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of each property's mean query loss."""
        weight, first, second = self.moments
        prior_mean = first / weight if weight > 0 else 0.0
        variance = max(second / weight - prior_mean ** 2, 1e-6) if weight > 0 else 1.0
        prior = self.options["prior_count"]
        counts = np.array([self.count.get(p, 0.0) for p in properties])
        totals = np.array([self.total.get(p, 0.0) for p in properties])
        return (totals + prior * prior_mean) / (counts + prior), np.sqrt(variance / (counts + prior))

    def act(self, observation: dict, rng: np.random.Generator, iteration: int) -> Decision:
        valid = valid_pairs(observation)
        properties = [int(p) for p in np.asarray(observation["properties"])[valid]]
        count = min(self.config.pairs, len(valid))
        mean, std = self.posterior(properties)
        picks = np.argsort(-rng.normal(mean, std))[:count]
        draws = rng.normal(mean, std, size=(self.MONTE_CARLO_DRAWS, len(valid)))
        chosen = np.zeros(len(valid))
        np.add.at(chosen, np.argsort(-draws, axis=1)[:, :count].reshape(-1), 1.0)
        inclusion = chosen / chosen.sum()
        full = np.zeros(len(observation["mask"]) // 2)
        full[valid] = inclusion
        return Decision(valid[picks].astype(np.int64), None, full, selection_entropy(inclusion))

    def observe(self, feedback: Feedback) -> None:
        discount = self.options["discount"]
        self.count = {p: discount * n for p, n in self.count.items()}
        self.total = {p: discount * t for p, t in self.total.items()}
        self.moments = [discount * m for m in self.moments]
        for prop, loss in feedback.query_losses.items():
            self.count[prop] = self.count.get(prop, 0.0) + 1.0
            self.total[prop] = self.total.get(prop, 0.0) + loss
            self.moments = [self.moments[0] + 1.0, self.moments[1] + loss, self.moments[2] + loss * loss]

    def state_dict(self) -> dict:
        return {"count": dict(self.count), "total": dict(self.total), "moments": list(self.moments)}

    def load_state_dict(self, state: dict) -> None:
        self.count = {int(k): v for k, v in state["count"].items()}
        self.total = {int(k): v for k, v in state["total"].items()}
        self.moments = list(state["moments"])
