"""Scheduler policies: given the candidate pool, choose B distinct pairs of subgraphs.

Every policy implements `act(observation, rng, iteration) -> Decision`; the action is an array of
B distinct pair indices. Policies with parameters (GS-Meta's selector) return the exact
log-probability of the ordered draw so `learners.scheduler_learner` can apply REINFORCE; the
others learn from `observe(feedback)` or not at all. A user's own policy class is named in the
config as "package.module:ClassName" and built with (scheduler config, embedding_dim); its own
settings go under `scheduler.options`.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from gsrl.config import SchedulerConfig


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


class UniformPolicy:
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

    def observe(self, feedback: Feedback) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


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


def make_policy(config: SchedulerConfig, embedding_dim: int, seed: int = 0):
    """A policy from the registry, or a user's class named "package.module:ClassName".

    Its parameters are initialised from `seed` alone, whatever the process drew from torch's global
    generator before (in-process workers build models, Ray workers do not)."""
    name = config.policy
    if name in POLICIES:
        cls = POLICIES[name]
    elif ":" in name:
        module_name, class_name = name.split(":", 1)
        cls = getattr(importlib.import_module(module_name), class_name)
    else:
        raise ValueError(f"scheduler.policy '{name}' is neither one of {sorted(POLICIES)} nor 'module:Class'")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(config, embedding_dim)
