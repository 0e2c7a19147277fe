"""A scheduler policy plug-in: round-robin over training properties.

Each meta-iteration it picks the B pool pairs whose properties were trained least recently (never
trained first), so every property comes round in turn as far as the random candidate pools allow.
Run it with

    python -m gsrl.cli train -c configs/quickstart.yaml \\
        -o scheduler.policy=examples.round_robin_policy:RoundRobinPolicy \\
        -o scheduler.options='{random_ties: false}'

from the repository root (docs/extending.md).
"""

from __future__ import annotations

import numpy as np

from gsrl.config import SchedulerConfig
from gsrl.scheduling.policies import Decision, Feedback, valid_pairs


class RoundRobinPolicy:
    """Least recently trained property first. `scheduler.options.random_ties` (default true): break ties
    between equally stale properties at random; false breaks them by property id."""

    def __init__(self, config: SchedulerConfig, embedding_dim: int):
        self.pairs = config.pairs
        self.random_ties = bool(config.options.get("random_ties", True))
        self.last_trained: dict[int, int] = {}  # property id -> meta-iteration it last ran in
        self.iterations = 0

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator, iteration: int) -> Decision:
        valid = valid_pairs(observation)
        properties = np.asarray(observation["properties"])[valid]
        staleness = np.array([self.last_trained.get(int(p), -1) for p in properties])
        ties = rng.permutation(len(valid)) if self.random_ties else properties
        order = np.lexsort((ties, staleness))[: self.pairs]  # oldest first, then the tie-break
        weights = np.zeros(len(observation["properties"]))
        weights[valid[order]] = 1.0
        return Decision(pairs=valid[order].astype(np.int64), probabilities=weights, entropy=0.0)

    def observe(self, feedback: Feedback) -> None:
        for pair in feedback.pairs:
            self.last_trained[feedback.pool_properties[pair]] = self.iterations
        self.iterations += 1

    def state_dict(self) -> dict:
        return {"last_trained": dict(self.last_trained), "iterations": self.iterations}

    def load_state_dict(self, state: dict) -> None:
        self.last_trained = {int(p): int(i) for p, i in state["last_trained"].items()}
        self.iterations = int(state["iterations"])
