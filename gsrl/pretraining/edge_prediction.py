"""Edge prediction: score bonded atom pairs above non-bonded ones.

The score of a pair is the dot product of the two node embeddings; bonds are the positives and
as many non-bonded pairs as the molecule has bonds are the negatives (fewer when the molecule does
not have that many), with BCE with logits on both. There are no parameters besides the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from gsrl.models.encoder import MoleculeEncoder
from gsrl.pretraining.base import Metrics, PretrainingStrategy, binary_contrast, empty_contrast


@dataclass
class EdgePredictionSettings:
    """Edge prediction has no settings; the class keeps the strategy interface uniform."""


def sample_non_edges(edge_index: Tensor, num_nodes: int, count: int, rng: np.random.Generator) -> Tensor:
    """``[2, min(count, available)]`` distinct unordered pairs ``i < j`` that are not bonded.

    All pairs are enumerated and the bonded ones removed, so the result never contains a bond; a
    molecule has at most a few hundred atoms, which keeps this cheap.
    """
    first, second = np.triu_indices(num_nodes, k=1)
    sources, targets = edge_index.numpy()
    bonded = np.isin(first * num_nodes + second, sources * num_nodes + targets)
    candidates = np.flatnonzero(~bonded)
    chosen = np.sort(rng.choice(candidates, size=min(count, candidates.size), replace=False))
    return torch.from_numpy(np.stack([first[chosen], second[chosen]]))


class EdgePrediction(PretrainingStrategy):
    """Prepared field: ``negative_edge_index`` ``[2, num_negatives]``."""

    name = "edge_prediction"
    settings_type = EdgePredictionSettings

    def __init__(self, encoder: MoleculeEncoder, settings: EdgePredictionSettings | None = None) -> None:
        super().__init__(encoder)
        self.settings = settings or EdgePredictionSettings()

    def prepare(self, data: Data, rng: np.random.Generator) -> Data:
        prepared = data.clone()
        num_bonds = data.edge_index.size(1) // 2  # every bond is stored in both directions
        prepared.negative_edge_index = sample_non_edges(data.edge_index, data.num_nodes, num_bonds, rng)
        return prepared

    def loss(self, batch: Batch) -> tuple[Tensor, Metrics]:
        if batch.edge_index.size(1) == 0 or batch.negative_edge_index.size(1) == 0:
            return empty_contrast(self)
        nodes = self.encoder.node_embeddings(batch.x, batch.edge_index, batch.edge_attr)
        # Both directions of every bond score the same, so the mean equals that over bonds.
        positive = _pair_scores(nodes, batch.edge_index)
        negative = _pair_scores(nodes, batch.negative_edge_index)
        return binary_contrast(positive, negative)


def _pair_scores(nodes: Tensor, pairs: Tensor) -> Tensor:
    return (nodes[pairs[0]] * nodes[pairs[1]]).sum(dim=1)
