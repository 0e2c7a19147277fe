"""Data that crosses between the roles: learner, episode workers (in-process or through Ray) and the environment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor


@dataclass
class Weights:
    """Meta-parameters and BatchNorm buffers at one version; broadcast once per meta-iteration."""

    version: int
    params: dict[str, Tensor]
    buffers: dict[str, Tensor]


@dataclass
class EpisodeSummary:
    """Phase-1 result of one training episode, without autograd history."""

    embedding: Tensor  # g
    query_loss: float
    support_loss: float | None
    proposed_buffers: dict[str, Tensor]
    version: int


@dataclass
class PropertyPrediction:
    """Test-query predictions of one evaluation episode."""

    target: int
    scores: np.ndarray  # query logits (any increasing function of P(active) ranks the same)
    labels: np.ndarray


@dataclass
class OuterStep:
    """What one outer update did: the losses it descended, its gradient norm and learning rate."""

    query_loss: float
    support_loss: float
    contrastive_loss: float
    total_loss: float
    grad_norm: float
    lr: float
    applied: bool  # False when a non-finite loss or gradient made the update unsafe
