"""The relation GNN over one episode's query graphs, computed densely.

Each query graph has nodes [T properties, n_s support molecules, 1 query molecule]. All query
graphs of an episode share their node layout, so the graphs are held as one [B, N, d] tensor and
message passing is a batched matrix product with a dense weighted adjacency instead of a generic
sparse graph batch rebuilt at every layer. Semantics (mean aggregation over incoming edges,
typed edge embeddings, edge weights, BatchNorm over all nodes of the episode) are those of the
sparse formulation; `tests/test_relation.py` checks the two against each other.

Edge types: 0 molecule–molecule (learned weight), 1 inactive label, 2 active label, 3 missing label.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MOL_MOL, INACTIVE, ACTIVE, UNKNOWN = 0, 1, 2, 3
NUM_EDGE_TYPES = 4


class EpisodeStructure:
    """The label-defined (molecule–property) edges of an episode, as dense per-graph tensors.

    weights[b, j, i] is the weight of edge j -> i; counts[b, i] the number of incoming edges;
    type_sums[b, i, t] the summed weight of incoming edges of type t.
    """

    def __init__(self, weights: Tensor, present: Tensor, type_sums: Tensor, num_properties: int):
        self.weights = weights
        self.counts = present.sum(dim=1)
        self.type_sums = type_sums
        self.num_properties = num_properties

    @classmethod
    def build(cls, support_labels: Tensor, query_aux_labels: Tensor, unk_edges: bool, unk_weight: float,
              ) -> EpisodeStructure:
        """support_labels [n_s, T] shared by all graphs, or [B, n_s, T] per graph (column 0 = target);
        query_aux_labels [B, T-1]; nan = missing."""
        n_s, num_props = support_labels.shape[-2:]
        batch = query_aux_labels.shape[0]
        n_nodes = num_props + n_s + 1
        dtype, device = support_labels.dtype, support_labels.device
        # edge type per molecule–property pair: [B, n_s + 1, T], -1 where no edge
        support_types = _label_types(support_labels, unk_edges).expand(batch, -1, -1)
        query_types = torch.cat([torch.full((batch, 1), -1, device=device, dtype=torch.long),
                                 _label_types(query_aux_labels, unk_edges)], dim=1).unsqueeze(1)
        mol_types = torch.cat([support_types, query_types], dim=1)
        present = (mol_types >= 0).to(dtype)
        mol_weights = present * torch.where(mol_types == UNKNOWN, unk_weight, 1.0).to(dtype)
        weights = torch.zeros(batch, n_nodes, n_nodes, dtype=dtype, device=device)
        weights[:, num_props:, :num_props] = mol_weights  # molecule -> property
        weights[:, :num_props, num_props:] = mol_weights.transpose(1, 2)  # property -> molecule
        presence = torch.zeros_like(weights)
        presence[:, num_props:, :num_props] = present
        presence[:, :num_props, num_props:] = present.transpose(1, 2)
        one_hot = F.one_hot(mol_types.clamp(min=0), NUM_EDGE_TYPES).to(dtype) * mol_weights.unsqueeze(-1)
        type_sums = torch.zeros(batch, n_nodes, NUM_EDGE_TYPES, dtype=dtype, device=device)
        type_sums[:, :num_props] = one_hot.sum(dim=1)  # into property nodes, summed over molecules
        type_sums[:, num_props:] = one_hot.sum(dim=2)  # into molecule nodes, summed over properties
        return cls(weights, presence, type_sums, num_props)


def _label_types(labels: Tensor, unk_edges: bool) -> Tensor:
    types = torch.where(labels == 1, ACTIVE, INACTIVE)
    missing = torch.isnan(labels)
    return torch.where(missing, UNKNOWN if unk_edges else -1, types).long()


class EdgeScorer(nn.Module):
    """Learned molecule–molecule edges: a_ij = sigmoid(MLP(exp(-|h_i - h_j|))), no self edge, top-k per row.

    The pair features are symmetric (x_ij = x_ji) and every diagonal pair is the all-ones vector,
    so the MLP runs once per unordered pair plus once for the diagonal, and the BatchNorm
    statistics weight them as the full n x n grid would (off-diagonal twice, diagonal n times).
    This is the same function as the MLP over the whole grid at half the arithmetic and memory.
    """

    def __init__(self, dim: int, hidden_dim: int, num_layers: int, dropout: float, top_k: int):
        super().__init__()
        widths = [hidden_dim] * num_layers
        if num_layers > 1:
            widths[0] = 2 * hidden_dim
        if num_layers > 3:
            widths[1] = 2 * hidden_dim
        inputs = [dim] + widths[:-1]
        self.hidden = nn.ModuleList(nn.Linear(i, o, bias=False) for i, o in zip(inputs, widths))
        self.norms = nn.ModuleList(nn.BatchNorm1d(o) for o in widths)
        self.out = nn.Linear(widths[-1], 1)
        self.dropout = dropout
        self.top_k = top_k

    def forward(self, mol: Tensor) -> Tensor:
        """mol [B, n, d] -> adjacency [B, n, n]; row r lists the edges r -> c."""
        batch, n, dim = mol.shape
        rows, cols = torch.triu_indices(n, n, offset=1, device=mol.device)
        difference = torch.zeros(rows.numel(), n, dtype=mol.dtype, device=mol.device)
        pair_index = torch.arange(rows.numel(), device=mol.device)
        difference[pair_index, rows] = 1.0
        difference[pair_index, cols] = -1.0
        pairs = torch.exp(-(difference @ mol).abs())  # [B, P, d], P = n(n-1)/2; one GEMM, not two gathers
        diagonal = mol.new_ones(batch, 1, dim)  # exp(-|h_i - h_i|)
        x = torch.cat([pairs, diagonal], dim=1)
        for linear, norm in zip(self.hidden, self.norms):
            x = F.leaky_relu(_grid_batch_norm(linear(x), norm, n))
            if self.training and self.dropout > 0:  # channel dropout, as Dropout2d on [B, C, n, n]
                x = x * F.dropout(x.new_ones(batch, 1, x.shape[-1]), self.dropout, training=True)
        pair_scores = torch.sigmoid(self.out(x[:, :-1]).squeeze(-1))  # [B, P]
        scores = _symmetric_matrix(pair_scores, rows, cols, n)
        top = scores.topk(min(self.top_k, n), dim=-1).indices
        return scores * torch.zeros_like(scores).scatter(-1, top, 1.0)


def _symmetric_matrix(values: Tensor, rows: Tensor, cols: Tensor, n: int) -> Tensor:
    """[B, P] upper-triangle values -> [B, n, n] symmetric matrix with a zero diagonal."""
    index = torch.full((n, n), values.shape[1], dtype=torch.long, device=values.device)
    index[rows, cols] = torch.arange(values.shape[1], device=values.device)
    index[cols, rows] = index[rows, cols]
    padded = torch.cat([values, values.new_zeros(values.shape[0], 1)], dim=1)
    return padded[:, index.reshape(-1)].reshape(-1, n, n)


def _grid_batch_norm(x: Tensor, norm: nn.BatchNorm1d, n: int) -> Tensor:
    """BatchNorm over the n x n grid of each graph, given [B, P + 1, C] = unordered pairs + the diagonal.

    Train mode uses the grid's batch statistics (each pair counted twice, the diagonal n times)
    and moves the running statistics like nn.BatchNorm2d would; eval mode uses the running ones.
    """
    if not norm.training:
        return F.batch_norm(x.transpose(1, 2), norm.running_mean, norm.running_var, norm.weight, norm.bias,
                            False, 0.0, norm.eps).transpose(1, 2)
    weights = torch.full((x.shape[1],), 2.0, dtype=x.dtype, device=x.device)
    weights[-1] = float(n)
    count = x.shape[0] * n * n
    mean = torch.einsum("bpc,p->c", x, weights) / count
    centered = x - mean
    var = torch.einsum("bpc,p->c", centered * centered, weights) / count
    with torch.no_grad():
        momentum = norm.momentum
        norm.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
        norm.running_var.mul_(1 - momentum).add_(momentum * var.detach() * count / (count - 1))
        norm.num_batches_tracked.add_(1)
    return centered * torch.rsqrt(var + norm.eps) * norm.weight + norm.bias


class NodeUpdate(nn.Module):
    """m_i = mean_{j->i} w_ij (W_n h_j + E[type_ij]) + W_r h_i, then BatchNorm, LeakyReLU, dropout."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.neighbor = nn.Linear(dim, dim)
        self.root = nn.Linear(dim, dim)
        self.edge_type = nn.Embedding(NUM_EDGE_TYPES, dim)
        nn.init.xavier_uniform_(self.edge_type.weight)
        self.norm = nn.BatchNorm1d(dim)
        self.dropout = dropout

    def forward(self, h: Tensor, weights: Tensor, counts: Tensor, type_sums: Tensor) -> Tensor:
        batch, n_nodes, dim = h.shape
        summed = weights.transpose(1, 2) @ self.neighbor(h) + type_sums @ self.edge_type.weight
        out = summed / counts.clamp(min=1).unsqueeze(-1) + self.root(h)
        out = F.leaky_relu(self.norm(out.reshape(-1, dim)).reshape(batch, n_nodes, dim))
        return F.dropout(out, self.dropout, training=self.training)


class RelationLayer(nn.Module):
    def __init__(self, dim: int, edge_hidden_dim: int, edge_layers: int, dropout: float, top_k: int):
        super().__init__()
        self.edges = EdgeScorer(dim, edge_hidden_dim, edge_layers, dropout, top_k)
        self.nodes = NodeUpdate(dim, dropout)


class RelationNet(nn.Module):
    """Stacked (edge update, node update) layers over the episode's query graphs."""

    def __init__(self, dim: int, num_layers: int, edge_hidden_dim: int, edge_layers: int, dropout: float,
                 input_dropout: float, top_k: int, mol_mol_edges: bool = True):
        super().__init__()
        self.layers = nn.ModuleList(RelationLayer(dim, edge_hidden_dim, edge_layers, dropout, top_k)
                                    for _ in range(num_layers))
        self.input_dropout = input_dropout
        self.mol_mol_edges = mol_mol_edges

    def forward(self, properties: Tensor, molecules: Tensor, structure: EpisodeStructure) -> Tensor:
        """properties [T, d] shared by all graphs (or [B, T, d] per graph), molecules [B, n_s + 1, d]
        -> node states [B, N, d]."""
        batch = molecules.shape[0]
        num_props = properties.shape[-2]
        properties = F.dropout(properties, self.input_dropout, training=self.training)
        molecules = F.dropout(molecules, self.input_dropout, training=self.training)
        h = torch.cat([properties.expand(batch, -1, -1), molecules], dim=1)
        for layer in self.layers:
            weights, counts, type_sums = structure.weights, structure.counts, structure.type_sums
            if self.mol_mol_edges:
                adjacency = layer.edges(h[:, num_props:])
                pad = (num_props, 0, num_props, 0)
                weights = weights + F.pad(adjacency, pad)
                counts = counts + F.pad((adjacency > 0).to(h.dtype).sum(dim=1), (num_props, 0))
                mol_type = F.pad(adjacency.sum(dim=1), (num_props, 0)).unsqueeze(-1)
                type_sums = type_sums + F.pad(mol_type, (MOL_MOL, NUM_EDGE_TYPES - 1 - MOL_MOL))
            h = layer.nodes(h, weights, counts, type_sums)
        return h
