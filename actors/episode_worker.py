"""EpisodeWorker: a dataset index and a model replica that run the episodes they are given.

Protocol per meta-iteration: `set_weights` (one versioned object), `embed` the candidate pool,
`forward` the selected episodes (phase 1: the autograd graphs stay here, the embeddings g and
losses go back), then `backward` with the learner's dL/dg (phase 2) returns the meta-gradient of
each of its episodes. The same class runs in-process and as a Ray actor.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

from gsrl.config import Config
from gsrl.data.episodes import EpisodeSpec
from gsrl.meta.episode import EpisodeRunner, TrainedEpisode
from gsrl.meta.evaluation import predict
from gsrl.meta.messages import EpisodeSummary, PropertyPrediction, Weights
from gsrl.runtime import apply_threads, build_model, load_dataset, resolve_device

F = TypeVar("F", bound=Callable)


def _timed(method: F) -> F:
    """Add the method's wall time to the worker's busy seconds."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self._busy_seconds += time.perf_counter() - started
    return wrapper  # type: ignore[return-value]


class EpisodeWorker:
    def __init__(self, config: Config, dataset=None, device: torch.device | None = None):
        apply_threads(config)
        self.config = config
        self.device = device or resolve_device(config)
        self.dataset = dataset if dataset is not None else load_dataset(config)
        self.model = build_model(self.dataset, config).to(self.device)
        self.runner = EpisodeRunner(self.model, self.dataset, config.meta, self.device, config.run.precision)
        self.version = -1
        self.params: dict[str, Tensor] = {}
        self.buffers: dict[str, Tensor] = {}
        self._pending: list[TrainedEpisode] = []
        self._pending_specs: list[EpisodeSpec] = []
        self._busy_seconds = 0.0

    def location(self) -> dict[str, str | int | None]:
        """Where this replica runs (host, process, device, Ray node when inside Ray)."""
        import ray

        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
        return {"host": socket.gethostname(), "pid": os.getpid(), "device": str(self.device), "node": node}

    def take_busy_seconds(self) -> float:
        """Seconds spent computing since the last call (a per-worker metric the driver reduces)."""
        busy, self._busy_seconds = self._busy_seconds, 0.0
        return busy

    def set_weights(self, weights: Weights) -> None:
        """Adopt a new weights version; parameters become fresh leaves so gradients stay local."""
        self.params = {k: v.detach().to(self.device).clone().requires_grad_(True) for k, v in weights.params.items()}
        self.buffers = {k: v.detach().to(self.device).clone() for k, v in weights.buffers.items()}
        self.model.load_state_dict({**weights.params, **weights.buffers})  # for eval-mode pool embedding
        self.version = weights.version
        self._pending = []

    @_timed
    def embed(self, specs: list[EpisodeSpec]) -> Tensor:
        if not specs:
            return torch.empty(0)
        return self.runner.embed_pool(specs).cpu()

    @_timed
    def forward(self, specs: list[EpisodeSpec]) -> list[EpisodeSummary]:
        """Phase 1: adapt + query for each spec. With meta.retain_episode_graphs the autograd graphs
        stay here for `backward`; otherwise only the specs do, and `backward` recomputes them."""
        retain = self.config.meta.retain_episode_graphs
        episodes = [self.runner.train_episode(self.params, self.buffers, s, differentiable=retain) for s in specs]
        self._pending = episodes if retain else []
        self._pending_specs = list(specs)
        return [EpisodeSummary(
            embedding=e.embedding.detach().cpu(),
            query_loss=float(e.query_loss.detach()),
            support_loss=None if e.support_loss is None else float(e.support_loss.detach()),
            proposed_buffers={k: v.cpu() for k, v in e.proposed_buffers.items()},
            version=self.version,
        ) for e in episodes]

    @_timed
    def backward(self, grad_embeddings: Tensor, query_weight: float) -> list[dict[str, Tensor]]:
        """Phase 2: for each of this worker's episodes, in spec order, the gradient of
        query_weight * M_e + <dL/dg_e, g_e>, M_e being the episode's meta-objective (its query loss,
        except for Reptile). Per-episode gradients, summed by the learner in spec order,
        make the meta-gradient bitwise independent of how episodes were spread over workers."""
        grad_embeddings = grad_embeddings.to(self.device)
        if self.config.meta.retain_episode_graphs:
            episodes = iter(self._pending)
        else:  # recompute each episode (same seed, same values) just before its backward: one graph in memory
            episodes = (self.runner.train_episode(self.params, self.buffers, s) for s in self._pending_specs)
        names = list(self.params)
        gradients = []
        for i, episode in enumerate(episodes):
            objective = query_weight * episode.meta_objective + (grad_embeddings[i] * episode.embedding).sum()
            grads = torch.autograd.grad(objective, [self.params[n] for n in names], allow_unused=True)
            gradients.append({n: (torch.zeros_like(self.params[n]) if g is None else g).detach().cpu()
                              for n, g in zip(names, grads)})
        self._pending, self._pending_specs = [], []
        return gradients

    @_timed
    def evaluate(self, specs: list[EpisodeSpec], batch_size: int) -> list[PropertyPrediction]:
        return [predict(self.runner, self.params, self.buffers, s, batch_size) for s in specs]
