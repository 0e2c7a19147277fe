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


POLICIES = {
    "gsmeta": GSMetaPolicy,
    "uniform": UniformPolicy,
    "hardest": HardestFirstPolicy,
    "ucb": UCBPolicy,
}


def make_policy(config: SchedulerConfig, embedding_dim: int, seed: int = 0) -> SchedulerPolicy:
    """A policy from the registry, or a user's class named "package.module:ClassName".

    Its parameters are initialised from `seed` alone, whatever the process drew from torch's global
    generator before (in-process workers build models, Ray workers do not). A class whose instances
    lack a method of `SchedulerPolicy` is rejected with a ConfigError."""
    name = config.policy
    if name in POLICIES:
        cls = POLICIES[name]
    elif ":" in name:
        module_name, class_name = name.split(":", 1)
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ConfigError(f"scheduler.policy '{name}' cannot be imported ({error}); name a registered policy "
                              f"{sorted(POLICIES)} or an importable 'module:Class'") from None
    else:
        raise ConfigError(f"scheduler.policy '{name}' is neither one of {sorted(POLICIES)} nor 'module:Class'")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = cls(config, embedding_dim)
    missing = [method for method in POLICY_METHODS if not callable(getattr(policy, method, None))]
    if missing:
        raise ConfigError(f"scheduler.policy '{name}': {cls.__module__}.{cls.__qualname__} is not a SchedulerPolicy; "
                          f"it lacks {', '.join(missing)} (a policy needs {', '.join(POLICY_METHODS)})")
    return policy
