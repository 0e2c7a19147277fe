"""The two roles a meta-training step talks to, as the interfaces the environment and the driver use.

The implementations live above the library: `actors.worker_group` (in-process and Ray episode
workers) and `learners.meta_learner` / `learners.remote_learner` (the MetaLearner in the driver or
in its own actor). Naming them here keeps `envs/` free of any role package: the environment is given
a worker group and a learner and only ever calls these methods.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor

from gsrl.data.episodes import EpisodeSpec
from gsrl.meta.messages import EpisodeSummary, OuterStep, PropertyPrediction, Weights
from gsrl.models.episode_network import EpisodeNetwork


class EpisodeWorkers(Protocol):
    """Episode workers seen as one: specs in, results back in spec order, whatever the backend."""

    @property
    def size(self) -> int: ...

    def broadcast(self, weights: Weights) -> None: ...

    def embed(self, specs: list[EpisodeSpec]) -> Tensor: ...

    def forward(self, specs: list[EpisodeSpec]) -> list[EpisodeSummary]: ...

    def backward(self, grad_embeddings: Tensor, query_weight: float) -> dict[str, Tensor]: ...

    def evaluate(self, specs: list[EpisodeSpec], batch_size: int) -> list[PropertyPrediction]: ...

    def metrics(self) -> dict[str, float]: ...

    def describe(self) -> list[dict]: ...

    def close(self) -> None: ...


class OuterLearner(Protocol):
    """Owner of the meta-parameters: the contrastive term, the outer update and versioned weights."""

    version: int
    skipped_updates: int

    def restart(self, model: EpisodeNetwork) -> None:
        """Begin a new meta-training run from the given initial network (fresh optimiser, version 0)."""

    def weights(self) -> Weights: ...

    def contrastive_gradient(self, summaries: list[EpisodeSummary]) -> tuple[float, Tensor]: ...

    def apply(self, grads: dict[str, Tensor], summaries: list[EpisodeSummary], contrastive: float) -> OuterStep: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def close(self) -> None: ...
