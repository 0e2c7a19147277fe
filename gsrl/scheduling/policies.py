"""Scheduler policies: given the candidate pool, choose B distinct pairs of subgraphs; the registry.

Every policy is a `SchedulerPolicy` (`gsrl.scheduling.interface`): `act(observation, rng, iteration)
-> Decision`, where the action is an array of B distinct pair indices, plus `observe`, `state_dict`
and `load_state_dict`. Policies with parameters (GS-Meta's selector) return the exact
log-probability of the ordered draw so `learners.scheduler_learner` can apply REINFORCE; the others
learn from `observe(feedback)` (`gsrl.scheduling.loss_driven`, `gsrl.scheduling.agents`) or not at
all. A user's own policy class is named in the config as "package.module:ClassName" and built with
(scheduler config, embedding_dim); its own settings go under `scheduler.options`.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import torch
from torch import Tensor, nn

from gsrl.errors import ConfigError
from gsrl.scheduling.config import SchedulerConfig
from gsrl.scheduling.interface import (POLICY_METHODS, Decision, Feedback, SchedulerPolicy, StatelessPolicy,
                                       plackett_luce_sample, valid_pairs)
from gsrl.scheduling.loss_driven import (HardestFirstPolicy, LearningProgressPolicy, ThompsonSamplingPolicy,
                                         UCBPolicy)

__all__ = ["POLICIES", "OPTIONAL_POLICIES", "Decision", "Feedback", "GSMetaPolicy", "SchedulerPolicy",
           "StatelessPolicy", "UniformPolicy", "make_policy", "plackett_luce_sample", "valid_pairs"]


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
