"""Scheduler policies: given the candidate pool, choose B distinct pairs of subgraphs.

Every policy is a `SchedulerPolicy`: `act(observation, rng, iteration) -> Decision`, where the action
is an array of B distinct pair indices, plus `observe`, `state_dict` and `load_state_dict`. Policies
with parameters (GS-Meta's selector) return the exact log-probability of the ordered draw so
`learners.scheduler_learner` can apply REINFORCE; the others learn from `observe(feedback)` or not at
all. A user's own policy class is named in the config as "package.module:ClassName" and built with
(scheduler config, embedding_dim); its own settings go under `scheduler.options`.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from gsrl.scheduling.config import SchedulerConfig
from gsrl.errors import ConfigError


@dataclass
class Decision:
    pairs: np.ndarray  # [B] distinct pair indices into the pool
    log_prob: Tensor | None = None  # exact log-probability of the ordered draw (learnable policies)
    probabilities: np.ndarray | None = None  # per-pair selection weights, for telemetry
    entropy: float = float("nan")


@dataclass
class Feedback:
    """What the environment reports back after a meta-iteration."""

    pool_properties: list[int]
    pairs: list[int]
    reward: float
    query_losses: dict[int, float] = field(default_factory=dict)  # property -> mean query loss of its pair


@runtime_checkable
class SchedulerPolicy(Protocol):
    """What the meta-training driver (`gsrl.jobs.train.MetaTrainingDriver`) and the scheduler learner
    (`learners.scheduler_learner.SchedulerLearner`) use of a policy, and nothing more.

    `make_policy` builds a policy as `cls(scheduler_config, embedding_dim)` under a torch generator
    seeded from `run.seed`. Each meta-iteration the driver calls `act` on the environment's
    observation, runs the chosen pairs, then calls `observe` with what happened (skipped when the
    reward is not finite). `state_dict` goes into every checkpoint (torch.save, loaded with
    weights_only=True, so plain containers, numbers, strings and tensors only) and `load_state_dict`
    gets it back on resume.

    A policy with parameters (an `nn.Module`, which has `parameters()`) is trained by REINFORCE
    (loss = -log_prob * (reward - running-mean baseline), AdamW with `scheduler.lr`,
    `scheduler.weight_decay`, `scheduler.grad_clip`) on the `Decision.log_prob` it returns, which must
    then be the differentiable log-probability of the chosen pairs. A policy without parameters, or
    one whose decision has `log_prob=None`, is not trained by the learner. An optional
    `temperature(iteration) -> float` method is logged as `scheduler/temperature`; `Decision.entropy`
    is logged as `scheduler/entropy`.
    """

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator, iteration: int) -> Decision:
        """B distinct valid pair indices for this meta-iteration. `observation` holds "embeddings"
        [2P, d] (the two candidate subgraphs of pair i are rows 2i and 2i+1), "mask" [2P] (1 where a
        candidate is real, 0 for padding), "properties" [P] (property id per pair, -1 for padding) and
        "progress" [1] (fraction of `run.iterations` done). Draw randomness from `rng` only."""
        ...

    def observe(self, feedback: Feedback) -> None:
        """The outcome of the last `act`: the pairs that ran, the reward, per-property query losses."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly after a restart."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        ...


POLICY_METHODS = tuple(name for name in vars(SchedulerPolicy) if not name.startswith("_"))


def valid_pairs(observation: dict) -> np.ndarray:
    mask = np.asarray(observation["mask"]).reshape(-1, 2)
    return np.flatnonzero(mask.all(axis=1))


def legal_pairs(action: np.ndarray, valid: np.ndarray, count: int) -> np.ndarray:
    """`count` distinct valid pairs from a proposed action: its valid indices in order, first occurrence
    only, then the lowest unused valid pairs. Any MultiDiscrete action thus names a legal meta-batch, and
    one that proposes distinct valid pairs gets exactly those."""
    allowed = {int(v) for v in valid}
    chosen: list[int] = []
    for index in np.asarray(action, dtype=np.int64).reshape(-1)[:count]:
        if int(index) in allowed and int(index) not in chosen:
            chosen.append(int(index))
    chosen += [int(v) for v in sorted(allowed - set(chosen))][: count - len(chosen)]
    return np.array(chosen, dtype=np.int64)


def plackett_luce_sample(weights: Tensor, count: int, rng: np.random.Generator) -> tuple[np.ndarray, Tensor]:
    """Draw `count` distinct indices sequentially without replacement; return them and the exact log-probability.

    P(i_1..i_B) = prod_k w_{i_k} / (1 - sum_{j<k} w_{i_j}) for weights summing to one.
    """
    chosen: list[int] = []
    log_prob = weights.new_zeros(())
    remaining = weights.detach().cpu().double().numpy().copy()
    for _ in range(count):
        probs = remaining / remaining.sum()
        index = int(rng.choice(len(probs), p=probs))
        used = weights[chosen].sum() if chosen else weights.new_zeros(())
        log_prob = log_prob + torch.log(weights[index]) - torch.log1p(-used)
        chosen.append(index)
        remaining[index] = 0.0
    return np.array(chosen, dtype=np.int64), log_prob


class SelectorNetwork(nn.Module):
    """GS-Meta's selector: s_i = z1(g_i + z2(mean of the other candidates' g))."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.context = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.score = nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1), nn.Tanh())

    def forward(self, embeddings: Tensor) -> Tensor:
        n = embeddings.shape[0]
        others = (embeddings.sum(dim=0, keepdim=True) - embeddings) / max(n - 1, 1)
        return self.score(embeddings + self.context(others)).squeeze(-1)


class GSMetaPolicy(nn.Module):
    """The learned GS-Meta scheduler: softmax over candidates, pair weight p1 + p2, trained by REINFORCE."""

    learnable = True

    def __init__(self, config: SchedulerConfig, embedding_dim: int):
        super().__init__()
        self.config = config
        self.network = SelectorNetwork(embedding_dim, config.hidden_dim)

    def temperature(self, iteration: int) -> float:
        return (iteration // self.config.temperature_step + 1) * self.config.temperature

    def pair_weights(self, observation: dict, iteration: int) -> Tensor:
        valid = valid_pairs(observation)
        candidates = torch.as_tensor(observation["embeddings"]).reshape(-1, 2, observation["embeddings"].shape[-1])
        candidates = candidates[torch.as_tensor(valid)].reshape(-1, candidates.shape[-1]).float()
        probs = torch.softmax(self.network(candidates) / self.temperature(iteration), dim=0)
        return probs.reshape(-1, 2).sum(dim=1)

    def act(self, observation: dict, rng: np.random.Generator, iteration: int) -> Decision:
        valid = valid_pairs(observation)
        weights = self.pair_weights(observation, iteration)
        picks, log_prob = plackett_luce_sample(weights, min(self.config.pairs, len(valid)), rng)
        entropy = float(-(weights * torch.log(weights.clamp_min(1e-12))).sum().detach())
        full = np.zeros(len(observation["mask"]) // 2)
        full[valid] = weights.detach().numpy()
        return Decision(valid[picks], log_prob, full, entropy)

    def observe(self, feedback: Feedback) -> None:
        """Learning happens in SchedulerLearner from the log-probability."""


class StatelessPolicy:
    """Base of a policy that keeps no state and learns nothing from feedback: it only has to define `act`."""

    def observe(self, feedback: Feedback) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class UniformPolicy(StatelessPolicy):
    """GS-Meta's ablation 'w/o S': B distinct pairs uniformly at random, no learning."""

    learnable = False

    def __init__(self, config: SchedulerConfig, embedding_dim: int):
        self.config = config

    def act(self, observation: dict, rng: np.random.Generator, iteration: int) -> Decision:
        valid = valid_pairs(observation)
        picks = rng.choice(valid, size=min(self.config.pairs, len(valid)), replace=False)
        full = np.zeros(len(observation["mask"]) // 2)
        full[valid] = 1.0 / len(valid)
        return Decision(picks.astype(np.int64), None, full, math.log(len(valid)))


class _PropertyStatsPolicy:
    """Shared bookkeeping for policies that score pool properties from their past query losses."""

    learnable = False

    def __init__(self, config: SchedulerConfig, embedding_dim: int):
        self.config = config
        self.options = config.options
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
        decay = float(self.options.get("decay", 0.3))
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

    def scores(self, properties: list[int]) -> np.ndarray:
        return np.array([self.loss_mean.get(p, math.inf) for p in properties], dtype=float)


class UCBPolicy(_PropertyStatsPolicy):
    """UCB1 bandit over properties, reward = recent query loss: exploit hard properties, explore rare ones."""

    def scores(self, properties: list[int]) -> np.ndarray:
        c = float(self.options.get("exploration", 1.0))
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


def _entropy(probabilities: np.ndarray) -> float:
    positive = probabilities[probabilities > 0]
    return float(-(positive * np.log(positive)).sum())


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
        return Decision(valid[picks], None, full, _entropy(probabilities))

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
        return Decision(valid[picks].astype(np.int64), None, full, _entropy(inclusion))

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


POLICIES = {
    "gsmeta": GSMetaPolicy,
    "uniform": UniformPolicy,
    "hardest": HardestFirstPolicy,
    "ucb": UCBPolicy,
    "learning-progress": LearningProgressPolicy,
    "thompson": ThompsonSamplingPolicy,
}
# Registered policies that live in an optional extra's module, imported only when a config names them.
OPTIONAL_POLICIES = {"sb3-ppo": "gsrl.scheduling.agents:StableBaselinesPPOPolicy"}


def make_policy(config: SchedulerConfig, embedding_dim: int, seed: int = 0) -> SchedulerPolicy:
    """A policy from the registry, or a user's class named "package.module:ClassName".

    Its parameters are initialised from `seed` alone, whatever the process drew from torch's global
    generator before (in-process workers build models, Ray workers do not). A class whose instances
    lack a method of `SchedulerPolicy` is rejected with a ConfigError."""
    name = config.policy
    if name in POLICIES:
        cls = POLICIES[name]
    elif ":" in name or name in OPTIONAL_POLICIES:
        module_name, class_name = OPTIONAL_POLICIES.get(name, name).split(":", 1)
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ConfigError(f"scheduler.policy '{name}' cannot be imported ({error}); name a registered policy "
                              f"{sorted(POLICIES)} or an importable 'module:Class'") from None
    else:
        raise ConfigError(f"scheduler.policy '{name}' is neither one of {sorted(POLICIES | OPTIONAL_POLICIES)} "
                          f"nor 'module:Class'")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = cls(config, embedding_dim)
    missing = [method for method in POLICY_METHODS if not callable(getattr(policy, method, None))]
    if missing:
        raise ConfigError(f"scheduler.policy '{name}': {cls.__module__}.{cls.__qualname__} is not a SchedulerPolicy; "
                          f"it lacks {', '.join(missing)} (a policy needs {', '.join(POLICY_METHODS)})")
    return policy
