"""EpisodeWorker: a dataset index and a model replica that run the episodes they are given.

Protocol per meta-iteration: `set_weights` (one versioned object), `embed` the candidate pool,
`forward` the selected episodes (phase 1: the autograd graphs stay here, the embeddings g and
losses go back), then `backward` with the learner's dL/dg (phase 2) returns this worker's share
of the meta-gradient. The same class runs in-process and as a Ray actor.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gsrl.config import Config
from gsrl.data.episodes import EpisodeSpec
from gsrl.meta.episode import EpisodeRunner, TrainedEpisode
from gsrl.meta.evaluation import predict
from gsrl.meta.messages import EpisodeSummary, PropertyPrediction, Weights
from gsrl.runtime import build_model, load_dataset, resolve_device


class EpisodeWorker:
    def __init__(self, config: Config, dataset=None, device: torch.device | None = None):
        self.config = config
        self.device = device or resolve_device(config)
        self.dataset = dataset if dataset is not None else load_dataset(config)
        self.model = build_model(self.dataset, config).to(self.device)
        self.runner = EpisodeRunner(self.model, self.dataset, config, self.device)
        self.version = -1
        self.params: dict[str, Tensor] = {}
        self.buffers: dict[str, Tensor] = {}
        self._pending: list[TrainedEpisode] = []
        self._pending_specs: list[EpisodeSpec] = []

    def set_weights(self, weights: Weights) -> None:
        """Adopt a new weights version; parameters become fresh leaves so gradients stay local."""
        self.params = {k: v.detach().to(self.device).clone().requires_grad_(True) for k, v in weights.params.items()}
        self.buffers = {k: v.detach().to(self.device).clone() for k, v in weights.buffers.items()}
        self.model.load_state_dict({**weights.params, **weights.buffers})  # for eval-mode pool embedding
        self.version = weights.version
        self._pending = []

    def embed(self, specs: list[EpisodeSpec]) -> Tensor:
        if not specs:
            return torch.empty(0)
        return self.runner.embed_pool(specs).cpu()

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

    def backward(self, grad_embeddings: Tensor, query_weight: float) -> dict[str, Tensor]:
        """Phase 2: gradient of sum_e (query_weight * L_e + <dL/dg_e, g_e>) for this worker's episodes."""
        grad_embeddings = grad_embeddings.to(self.device)
        names = list(self.params)
        totals = {n: torch.zeros_like(p) for n, p in self.params.items()}
        if self.config.meta.retain_episode_graphs:
            groups = [self._pending]  # one backward through all retained graphs
        else:  # recompute each episode (same seed, same values) and backward it alone: one graph in memory
            groups = ([self.runner.train_episode(self.params, self.buffers, s)] for s in self._pending_specs)
        offset = 0
        for episodes in groups:
            total = sum(query_weight * e.query_loss + (grad_embeddings[offset + i] * e.embedding).sum()
                        for i, e in enumerate(episodes))
            offset += len(episodes)
            if not episodes:
                continue
            grads = torch.autograd.grad(total, [self.params[n] for n in names], allow_unused=True)
            for name, grad in zip(names, grads):
                if grad is not None:
                    totals[name] += grad
        self._pending, self._pending_specs = [], []
        return {n: g.detach().cpu() for n, g in totals.items()}

    def evaluate(self, specs: list[EpisodeSpec], batch_size: int) -> list[PropertyPrediction]:
        return [predict(self.runner, self.params, self.buffers, s, batch_size) for s in specs]
