"""Context prediction: tell a substructure's true surrounding from another molecule's.

Per molecule a random center atom is drawn (see :mod:`gsrl.pretraining.substructure` for the
substructure / context / anchor sets). The encoder embeds the k-hop substructure and its center
node's embedding represents it; a separate, shallower context encoder (``context_size`` = 3 layers
of the same conv type) embeds the context graph, and the context is represented by the mean of
its anchor nodes' embeddings. A substructure scores its own context and, as the negative, the
context of the next molecule in the batch by a dot product; the loss is BCE with logits on both
(Hu et al.'s default CBOW mode with one negative per positive).

Molecules whose context is empty (every atom within ``r1`` hops of the center, e.g. small
molecules) carry no signal. ``prepare`` gives them an empty substructure and context and no
center, so they vanish from the batch exactly as the published batching skips them; a batch
with fewer than two molecules left yields a zero loss (see ``PretrainingStrategy.zero_loss``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_mean_pool

from gsrl.models.encoder import MoleculeEncoder
from gsrl.pretraining.base import Metrics, PretrainingStrategy, binary_contrast, empty_contrast, other_graph_index
from gsrl.pretraining.substructure import hop_distances, induced_subgraph, split_substructure_context

# Index fields and the node set each one points into; they are offset by that set's size in a batch.
_INDEX_NODE_SETS = {
    "edge_index_substructure": "x_substructure",
    "substructure_center": "x_substructure",
    "edge_index_context": "x_context",
    "context_anchors": "x_context",
}


@dataclass
class ContextPredictionSettings:
    context_size: int = 3  # r2 - r1, also the depth of the context encoder

    def validate(self) -> None:
        if self.context_size < 1:
            raise ValueError(f"context_size must be >= 1, got {self.context_size}")


class SubstructureContextPair(Data):
    """A molecule with its substructure graph and context graph, batched side by side.

    Fields: ``x_substructure``, ``edge_index_substructure``, ``edge_attr_substructure``,
    ``substructure_center`` (one index, or none when the molecule is skipped), ``x_context``,
    ``edge_index_context``, ``edge_attr_context``, ``context_anchors`` and ``num_context_anchors``.
    """

    def __inc__(self, key: str, value: object, *args, **kwargs) -> object:
        if key in _INDEX_NODE_SETS:
            return self[_INDEX_NODE_SETS[key]].size(0)
        return super().__inc__(key, value, *args, **kwargs)


class ContextPrediction(PretrainingStrategy):
    name = "context_prediction"
    settings_type = ContextPredictionSettings

    def __init__(self, encoder: MoleculeEncoder, settings: ContextPredictionSettings | None = None) -> None:
        super().__init__(encoder)
        self.settings = settings or ContextPredictionSettings()
        self.settings.validate()
        self.substructure_radius = encoder.num_layers
        self.context_inner = encoder.num_layers - 1
        self.context_outer = self.context_inner + self.settings.context_size
        self.context_encoder = MoleculeEncoder(
            conv=encoder.conv_type,
            num_layers=self.settings.context_size,
            emb_dim=encoder.emb_dim,
            dropout=encoder.dropout,
            jk=encoder.jk,
        )
        if self.context_encoder.output_dim != encoder.output_dim:
            raise ValueError(
                f"jk={encoder.jk!r} gives substructure and context embeddings of different widths "
                f"({encoder.output_dim} vs {self.context_encoder.output_dim}); use another jk mode"
            )

    def prepare(self, data: Data, rng: np.random.Generator) -> Data:
        center = int(rng.integers(data.num_nodes))
        split = split_substructure_context(
            hop_distances(data.edge_index, data.num_nodes, center),
            self.substructure_radius,
            self.context_inner,
            self.context_outer,
        )
        no_nodes = np.empty(0, dtype=np.int64)
        has_context = split.context.size > 0
        substructure = split.substructure if has_context else no_nodes
        center_position = np.searchsorted(substructure, [center]) if has_context else no_nodes
        x_sub, edge_index_sub, edge_attr_sub = induced_subgraph(data, substructure)
        x_ctx, edge_index_ctx, edge_attr_ctx = induced_subgraph(data, split.context)
        return SubstructureContextPair.from_dict(
            {
                **data.to_dict(),
                "x_substructure": x_sub,
                "edge_index_substructure": edge_index_sub,
                "edge_attr_substructure": edge_attr_sub,
                "substructure_center": torch.from_numpy(center_position),
                "x_context": x_ctx,
                "edge_index_context": edge_index_ctx,
                "edge_attr_context": edge_attr_ctx,
                "context_anchors": torch.from_numpy(np.searchsorted(split.context, split.anchors)),
                "num_context_anchors": torch.tensor([split.anchors.size]),
            }
        )

    def loss(self, batch: Batch) -> tuple[Tensor, Metrics]:
        centers = batch.substructure_center
        num_pairs = centers.numel()
        if num_pairs < 2:
            return empty_contrast(self)
        substructure_nodes = self.encoder.node_embeddings(
            batch.x_substructure, batch.edge_index_substructure, batch.edge_attr_substructure
        )
        context_nodes = self.context_encoder.node_embeddings(
            batch.x_context, batch.edge_index_context, batch.edge_attr_context
        )
        # With r1 = k - 1 a molecule has anchors exactly when it has a context, i.e. a center.
        anchor_counts = batch.num_context_anchors[batch.num_context_anchors > 0]
        anchor_owner = torch.repeat_interleave(torch.arange(num_pairs, device=centers.device), anchor_counts)
        substructures = substructure_nodes[centers]
        contexts = global_mean_pool(context_nodes[batch.context_anchors], anchor_owner, size=num_pairs)
        positive = (substructures * contexts).sum(dim=1)
        negative = (substructures * contexts[other_graph_index(num_pairs).to(centers.device)]).sum(dim=1)
        return binary_contrast(positive, negative)
