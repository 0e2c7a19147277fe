"""One episode of GS-Meta, computed functionally for given meta-parameters and BatchNorm buffers.

BatchNorm rule (identical in one process and on N workers): inside episodes every BatchNorm uses
the batch statistics of its own forward pass. Running statistics (read only in eval mode: the
candidate-pool embedding and test predictions) follow every train-mode forward of the selected
episodes — inner-loop and query forwards — in spec order, as one sequential momentum average.
Each episode starts from the iteration's buffers and returns its proposal; since every momentum
step is affine in the starting statistics, the learner composes the proposals in spec order into
exactly the sequential result, whichever worker computed which episode
(`learners.meta_learner.compose_running_statistics`). Test-time adaptation never moves them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import functional_call

from gsrl.data.episodes import EpisodeSpec, EpisodeTensors, episode_tensors
from gsrl.meta.algorithms import algorithm_named
from gsrl.meta.config import MetaConfig
from gsrl.meta.losses import binary_cross_entropy
from gsrl.models.episode_network import EpisodeNetwork, EpisodeOutput
from gsrl.models.functional import full_precision
from gsrl.precision import autocast, check_precision

Params = dict[str, Tensor]


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Fix dropout randomness to the spec's seed without disturbing the caller's generator."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def clone_buffers(buffers: Params) -> Params:
    return {name: tensor.clone() for name, tensor in buffers.items()}


@dataclass
class TrainedEpisode:
    """Phase-1 result of a training episode; the tensors keep their autograd graph."""

    spec: EpisodeSpec
    query_loss: Tensor
    support_loss: Tensor | None
    embedding: Tensor  # g
    proposed_buffers: Params
    meta_objective: Tensor  # its gradient is this episode's meta-gradient (the query loss, except for Reptile)


class EpisodeRunner:
    """Runs the configured algorithm's episodes of one dataset on a model replica (the module only
    supplies structure; parameters and buffers are passed in)."""

    def __init__(self, model: EpisodeNetwork, dataset, meta: MetaConfig, device: torch.device,
                 precision: str = "fp32"):
        check_precision(precision, device)
        self.model = model
        self.dataset = dataset
        self.meta = meta
        self.device = device
        self.precision = precision
        self.rule = algorithm_named(meta.algorithm).rule
        self.adapt_names = model.parameter_names(meta.adapt)

    def tensors(self, spec: EpisodeSpec, include_query: bool = True) -> EpisodeTensors:
        return episode_tensors(spec, self.dataset, self.device, include_query)

    def forward(self, function, *args, **kwargs) -> EpisodeOutput:
        """An episode forward (`self.model`, or a method of a model) in the run's precision; the
        logits and g it returns are float32 whatever the matrix products ran in."""
        with autocast(self.device, self.precision):
            out = function(*args, **kwargs)
        return EpisodeOutput(*(None if t is None else full_precision(t) for t in
                               (out.support_logits, out.query_logits, out.subgraph_embedding)))

    def call(self, params: Params, buffers: Params, *args, **kwargs) -> EpisodeOutput:
        return self.forward(functional_call, self.model, {**params, **buffers}, args, kwargs)

    def support_loss_fn(self, running: Params, t: EpisodeTensors, query, query_labels):
        """Inner-loop loss: BCE of the support logits (for GS-Meta, every support molecule classified
        inside every query graph). BatchNorm moves the statistics in `running` in place (the caller
        passes its own copy)."""
        if not self.model.support_loss_needs_query:
            query = query_labels = None

        def loss(params: Params) -> Tensor:
            out = self.call(params, running, t.support, query, t.properties, t.support_labels,
                            query_labels, True)
            target = t.support_labels[:, 0].expand_as(out.support_logits)
            return binary_cross_entropy(out.support_logits, target)
        return loss

    def adapt(self, params: Params, running: Params, t: EpisodeTensors, query, query_labels,
              differentiable: bool = True) -> tuple[Params, Tensor | None]:
        loss_fn = self.support_loss_fn(running, t, query, query_labels)
        adapted, losses = self.rule.adapt(loss_fn, params, self.adapt_names, self.meta, differentiable)
        return adapted, (losses[-1] if losses else None)

    def train_episode(self, params: Params, buffers: Params, spec: EpisodeSpec,
                      differentiable: bool = True) -> TrainedEpisode:
        """Inner adaptation on the support, then the query loss with the adapted parameters.

        differentiable=False computes the same values without keeping anything for a meta-gradient
        (no second-order graph, no graph of the query forward): the memory-light first pass.
        """
        self.model.train()
        with seeded(spec.seed, self.device):
            t = self.tensors(spec)
            proposed = clone_buffers(buffers)
            adapted, support_loss = self.adapt(params, proposed, t, t.query, t.query_labels, differentiable)
            with torch.set_grad_enabled(differentiable):
                out = self.call(adapted, proposed, t.support, t.query, t.properties, t.support_labels,
                                t.query_labels, False)
                query_loss = binary_cross_entropy(out.query_logits, t.query_labels[:, 0])
                objective = self.rule.meta_objective(params, adapted, query_loss)
        return TrainedEpisode(spec, query_loss, support_loss, out.subgraph_embedding, proposed, objective)

    @torch.no_grad()
    def embed_pool(self, specs: list[EpisodeSpec]) -> Tensor:
        """Candidate-pool embeddings g [len(specs), d]: eval mode, target property only, no gradient,
        with the weights currently loaded in the module.

        Each candidate goes through the model on its own, so its g does not depend on which other
        candidates share a batch or a worker (matrix products of different heights round
        differently); on CPU this measured no slower than batching candidates of equal size.
        """
        self.model.eval()
        embeddings = []
        for spec in specs:
            t = self.tensors(spec.without_auxiliary())
            out = self.forward(self.model, t.support, t.query, t.properties, t.support_labels, t.query_labels,
                               with_support_logits=False)
            embeddings.append(out.subgraph_embedding)
        return torch.stack(embeddings)
