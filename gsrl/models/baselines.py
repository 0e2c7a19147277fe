"""Heads of the classic meta-learners: no relation graph, each molecule judged from its own embedding.

* `ClassifierNetwork`: GIN + an MLP that maps one molecule embedding to a logit (MAML, first-order
  MAML and Reptile adapt it on the support set).
* `PrototypeNetwork`: GIN plus one scalar; ProtoNet scores a molecule by its squared Euclidean
  distances to the two class prototypes (mean support embeddings), so nothing is adapted per task.

Their episode embedding g, which the scheduler observes and NT-Xent compares, is the mean embedding
of the episode's molecules.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gsrl.models.config import EncoderConfig
from gsrl.models.episode_network import EpisodeNetwork, EpisodeOutput


def mean_molecule_embedding(support: Tensor, query: Tensor | None) -> Tensor:
    """g of an episode without a relation graph: the mean over its support and query molecules."""
    molecules = support if query is None else torch.cat([support, query])
    return molecules.mean(dim=0)


class ClassifierNetwork(EpisodeNetwork):
    parameter_groups = ("encoder", "classifier")
    support_loss_needs_query = False

    def __init__(self, encoder: EncoderConfig):
        super().__init__(encoder)
        dim = encoder.emb_dim
        self.classifier = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(encoder.dropout),
                                        nn.Linear(dim, 1))

    def relate(self, support: Tensor, query: Tensor | None, properties: Tensor, support_labels: Tensor,
               query_labels: Tensor | None, with_support_logits: bool = True) -> EpisodeOutput:
        support_logits = self.classifier(support).view(1, -1) if with_support_logits else None
        query_logits = None if query is None else self.classifier(query).view(-1)
        return EpisodeOutput(support_logits, query_logits, mean_molecule_embedding(support, query))


class PrototypeNetwork(EpisodeNetwork):
    """Squared distances between 300-wide GIN embeddings run into the hundreds, which saturates the
    sigmoid from the first step; a learned metric scale (Oreshkin et al. 2018), starting at
    1 / width, multiplies them."""

    parameter_groups = ("encoder", "metric_scale")
    support_loss_needs_query = False

    def __init__(self, encoder: EncoderConfig):
        super().__init__(encoder)
        self.metric_scale = nn.Parameter(torch.tensor(-math.log(encoder.emb_dim)))  # log of the scale

    def relate(self, support: Tensor, query: Tensor | None, properties: Tensor, support_labels: Tensor,
               query_labels: Tensor | None, with_support_logits: bool = True) -> EpisodeOutput:
        """Log-odds of the active class: scale * (||z - c_inactive||² - ||z - c_active||²), a softmax over
        scaled negative squared distances (Snell et al. 2017) written for two classes."""
        active = support_labels[:, 0] > 0.5
        prototypes = torch.stack([support[~active].mean(dim=0), support[active].mean(dim=0)])
        scale = self.metric_scale.exp()

        def log_odds(molecules: Tensor) -> Tensor:
            distances = (molecules.unsqueeze(1) - prototypes).pow(2).sum(dim=-1)  # [n, 2]
            return scale * (distances[:, 0] - distances[:, 1])

        support_logits = log_odds(support).view(1, -1) if with_support_logits else None
        query_logits = None if query is None else log_odds(query)
        return EpisodeOutput(support_logits, query_logits, mean_molecule_embedding(support, query))
