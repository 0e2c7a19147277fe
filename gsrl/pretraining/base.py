"""Common interface of the pretraining strategies of Hu et al. 2020.

A strategy splits its work in two so that the random, per-molecule part can run wherever the data
is loaded (dataloader workers, Ray workers) and only tensors reach the model:

* :meth:`PretrainingStrategy.prepare` turns one featurized molecule into a training example
  (masks atoms, extracts a substructure and its context, samples non-edges, ...). It reads only
  the strategy's settings, never its parameters.
* :meth:`PretrainingStrategy.loss` scores a PyG ``Batch`` of prepared molecules.

The encoder is kept as a plain :class:`~gsrl.models.encoder.MoleculeEncoder` attribute and every
strategy-specific head is a separate sub-module, so ``strategy.encoder.state_dict()`` is exactly a
checkpoint in the published layout.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from gsrl.models.encoder import MoleculeEncoder

Metrics = dict[str, float]


class PretrainingStrategy(nn.Module, ABC):
    """A pretraining objective around a shared encoder.

    ``forward`` is ``loss``, so a strategy can be wrapped by ``DistributedDataParallel`` as is.
    """

    name: ClassVar[str]
    settings_type: ClassVar[type]

    def __init__(self, encoder: MoleculeEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    @abstractmethod
    def prepare(self, data: Data, rng: np.random.Generator) -> Data:
        """A new training example built from one molecule; ``data`` is left untouched."""

    @abstractmethod
    def loss(self, batch: Batch) -> tuple[Tensor, Metrics]:
        """Scalar loss of a batch of prepared molecules, and metrics for logging."""

    def forward(self, batch: Batch) -> tuple[Tensor, Metrics]:
        return self.loss(batch)

    def zero_loss(self) -> Tensor:
        """A zero loss for a batch that holds no training signal.

        It still depends on every parameter, so ``backward()`` gives zero gradients everywhere and
        distributed gradient synchronisation proceeds exactly as on an ordinary batch.
        """
        return torch.stack([parameter.sum() for parameter in self.parameters()]).sum() * 0.0


def other_graph_index(num_graphs: int) -> Tensor:
    """For each graph ``i`` of a batch, the graph ``(i + 1) mod num_graphs`` that supplies its negative.

    A cyclic shift pairs every graph with a different one (given at least two graphs) while using
    each graph exactly once as a negative, which is how the negatives of context prediction and
    Deep Graph Infomax are drawn.
    """
    if num_graphs < 2:
        raise ValueError(f"negatives from other graphs need at least 2 graphs, got {num_graphs}")
    return torch.arange(1, num_graphs + 1) % num_graphs


def binary_contrast(positive_logits: Tensor, negative_logits: Tensor) -> tuple[Tensor, Metrics]:
    """BCE with logits of positives against 1 plus negatives against 0, and balanced accuracy.

    Each side is averaged on its own, so the two classes weigh the same whatever their counts.
    """
    loss = F.binary_cross_entropy_with_logits(positive_logits, torch.ones_like(positive_logits)) + (
        F.binary_cross_entropy_with_logits(negative_logits, torch.zeros_like(negative_logits))
    )
    accuracy = 0.5 * ((positive_logits > 0).float().mean() + (negative_logits < 0).float().mean())
    return loss, {"loss": loss.item(), "accuracy": accuracy.item(), "positives": float(positive_logits.numel())}


def empty_contrast(strategy: PretrainingStrategy) -> tuple[Tensor, Metrics]:
    """What a contrastive strategy reports for a batch with nothing to contrast."""
    return strategy.zero_loss(), {"loss": 0.0, "accuracy": math.nan, "positives": 0.0}
