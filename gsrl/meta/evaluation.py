"""Evaluation of test properties: adapt on a support draw, then score every remaining molecule.

Two protocols are reported, always labelled:
* "paper": GS-Meta's published protocol: one support draw per property at each periodic
  evaluation, and the best mean ROC-AUC among the periodic evaluations (no validation split).
* "honest": the final model only, each property's ROC-AUC averaged over several support draws.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from gsrl.data.episodes import EpisodeSampler, EpisodeSpec, RngStream, derive_rng
from gsrl.meta.episode import EpisodeRunner, Params, clone_buffers, seeded
from gsrl.meta.messages import PropertyPrediction
from gsrl.models.functional import full_precision
from gsrl.precision import autocast

PAPER = "paper"
HONEST = "honest"


def predict(runner: EpisodeRunner, params: Params, buffers: Params, spec: EpisodeSpec,
            batch_size: int) -> PropertyPrediction:
    """Inner step(s) on the support with the context queries (train mode), then eval-mode predictions.

    The scores are the query logits: ROC-AUC ranks them, and a sigmoid in float32 would round large
    logits to exactly 0 or 1 and tie molecules the logits still order."""
    model = runner.model
    with seeded(spec.seed, runner.device):
        model.train()
        t = runner.tensors(spec, include_query=False)
        with torch.enable_grad():
            adapted, _ = runner.adapt({k: v.detach().requires_grad_(True) for k, v in params.items()},
                                      clone_buffers(buffers), t, t.context, t.context_labels)
    adapted_model = copy.deepcopy(model)
    adapted_model.load_state_dict({**{k: v.detach() for k, v in adapted.items()}, **buffers})
    adapted_model.eval()
    scores = []
    labels = runner.dataset.labels[torch.tensor(spec.query)][:, list((spec.target,) + spec.auxiliary)]
    # The encoders run in the run's precision; the relation net and classifier in float32, since
    # bf16 logits (8 significant bits) would tie molecules that ROC-AUC must rank.
    def encode(graphs):
        with autocast(runner.device, runner.precision):
            return full_precision(adapted_model.encode(graphs))

    with torch.no_grad():
        support = encode(t.support)
        for start in range(0, len(spec.query), batch_size):
            ids = spec.query[start:start + batch_size]
            graphs = runner.dataset.graphs.collate_ids(ids).to(runner.device)
            chunk_labels = labels[start:start + batch_size].to(runner.device)
            out = adapted_model.relate(support, encode(graphs), t.properties, t.support_labels,
                                       chunk_labels, with_support_logits=False)
            scores.append(out.query_logits.double().cpu())
    return PropertyPrediction(spec.target, torch.cat(scores).numpy(), labels[:, 0].numpy())


def roc_auc(prediction: PropertyPrediction) -> float:
    return float(roc_auc_score(prediction.labels, prediction.scores))


def evaluation_specs(sampler: EpisodeSampler, properties: list[int], auxiliary_count: int | None, seed: int,
                     evaluation_index: int, draws: int) -> list[EpisodeSpec]:
    """Support draws for each test property, fixed by (seed, evaluation index, property, draw)."""
    specs = []
    for prop in sampler.eligible_properties(properties):
        for draw in range(draws):
            rng = derive_rng(seed, RngStream.EVALUATION, evaluation_index, prop, draw)
            aux = sampler.auxiliary_for(prop, sampler.train_properties, auxiliary_count, rng)
            specs.append(sampler.eval_spec(prop, aux, rng))
    return specs


@dataclass
class EvaluationResult:
    iteration: int
    per_property: dict[int, list[float]]  # property -> ROC-AUC per support draw

    @property
    def property_means(self) -> dict[int, float]:
        return {p: float(np.mean(v)) for p, v in self.per_property.items()}

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.property_means.values())))

    @property
    def std(self) -> float:
        return float(np.std(list(self.property_means.values())))

    def to_dict(self, names: list[str]) -> dict:
        return {"iteration": self.iteration, "auc_mean": self.mean, "auc_std": self.std,
                "per_property": {names[p]: v for p, v in self.per_property.items()}}


def summarize(predictions: list[PropertyPrediction], iteration: int) -> EvaluationResult:
    per_property: dict[int, list[float]] = {}
    for prediction in predictions:
        per_property.setdefault(prediction.target, []).append(roc_auc(prediction))
    return EvaluationResult(iteration, per_property)
