"""WorkerGroup: the learner's view of its episode workers, whatever process they live in.

Specs are split into contiguous shards, one per worker, and results are put back in spec order,
so the learner sees the same list (and sums per-episode gradients in the same order) on any backend
and for any number of workers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import Tensor

from gsrl.data.episodes import EpisodeSpec
from gsrl.meta.messages import EpisodeSummary, PropertyPrediction, Weights

T = TypeVar("T")


def shard_bounds(count: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) ranges, sizes differing by at most one, earlier shards larger."""
    base, extra = divmod(count, workers)
    bounds, start = [], 0
    for i in range(workers):
        stop = start + base + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def sum_gradients(parts: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Sum per-episode gradients in spec order: the same additions in the same order on any backend."""
    total = {k: v.clone() for k, v in parts[0].items()}
    for part in parts[1:]:
        for k, v in part.items():
            total[k] += v
    return total


class WorkerGroup(ABC):
    @property
    @abstractmethod
    def size(self) -> int: ...

    @abstractmethod
    def broadcast(self, weights: Weights) -> None: ...

    @abstractmethod
    def embed(self, specs: list[EpisodeSpec]) -> Tensor: ...

    @abstractmethod
    def forward(self, specs: list[EpisodeSpec]) -> list[EpisodeSummary]: ...

    @abstractmethod
    def backward(self, grad_embeddings: Tensor, query_weight: float) -> dict[str, Tensor]: ...

    @abstractmethod
    def evaluate(self, specs: list[EpisodeSpec], batch_size: int) -> list[PropertyPrediction]: ...

    def metrics(self) -> dict[str, float]:
        """Per-worker health and load, reduced for the driver's TensorBoard."""
        return {}

    def describe(self) -> list[dict]:
        """Where each worker runs (recorded in results.json)."""
        return []

    def close(self) -> None:
        """Release workers (a no-op in-process)."""


class LocalWorkerGroup(WorkerGroup):
    """Workers in the driver process: for tests, debugging and single-device runs."""

    def __init__(self, workers: list):
        self.workers = workers
        self._forward_bounds: list[tuple[int, int]] = []

    @property
    def size(self) -> int:
        return len(self.workers)

    def broadcast(self, weights: Weights) -> None:
        for worker in self.workers:
            worker.set_weights(weights)

    def _shards(self, specs: list[EpisodeSpec]) -> list[tuple[object, list[EpisodeSpec], tuple[int, int]]]:
        bounds = shard_bounds(len(specs), self.size)
        return [(w, specs[a:b], (a, b)) for w, (a, b) in zip(self.workers, bounds)]

    def embed(self, specs: list[EpisodeSpec]) -> Tensor:
        parts = [w.embed(part) for w, part, _ in self._shards(specs) if part]
        return torch.cat(parts)

    def forward(self, specs: list[EpisodeSpec]) -> list[EpisodeSummary]:
        shards = self._shards(specs)
        self._forward_bounds = [bounds for _, _, bounds in shards]
        return [summary for w, part, _ in shards for summary in w.forward(part)]

    def backward(self, grad_embeddings: Tensor, query_weight: float) -> dict[str, Tensor]:
        parts = [w.backward(grad_embeddings[a:b], query_weight)
                 for w, (a, b) in zip(self.workers, self._forward_bounds)]
        return sum_gradients([g for part in parts for g in part])

    def evaluate(self, specs: list[EpisodeSpec], batch_size: int) -> list[PropertyPrediction]:
        return [p for w, part, _ in self._shards(specs) if part for p in w.evaluate(part, batch_size)]

    def metrics(self) -> dict[str, float]:
        busy = [w.take_busy_seconds() for w in self.workers]
        return {"workers/healthy": float(self.size), "workers/restarts": 0.0, "workers/weights_lag": 0.0,
                "workers/busy_s_mean": sum(busy) / len(busy), "workers/busy_s_max": max(busy)}

    def describe(self) -> list[dict]:
        return [w.location() for w in self.workers]

