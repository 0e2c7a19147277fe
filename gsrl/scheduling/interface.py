"""What a scheduler policy is: `act` on the candidate pool -> `Decision`, `observe` a `Feedback`, state.

The meta-training driver and the scheduler learner use a policy through `SchedulerPolicy` alone; the
helpers here (valid pairs of an observation, a legal meta-batch from any proposed action, exact
Plackett-Luce draws) are what policies share. The registry of policies is `gsrl.scheduling.policies`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor


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


def selection_entropy(probabilities: np.ndarray) -> float:
    """Entropy of a policy's selection distribution over the pool (what `Decision.entropy` reports)."""
    positive = probabilities[probabilities > 0]
    return float(-(positive * np.log(positive)).sum())


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


class StatelessPolicy:
    """Base of a policy that keeps no state and learns nothing from feedback: it only has to define `act`."""

    def observe(self, feedback: Feedback) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

