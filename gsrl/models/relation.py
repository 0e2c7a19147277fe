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

from gsrl.models.functional import dropout, full_precision

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
    so the MLP runs once per unordered pair, and the diagonal enters only the training BatchNorm
    statistics, weighted as the full n x n grid would weight it (off-diagonal pairs twice, the
    diagonal n times). This is the same function as the MLP over the whole grid at half the
    arithmetic and memory.

    In eval mode BatchNorm is an affine map, folded into the preceding linear layer, and molecules
    whose states are the same in every graph (`shared`, e.g. the support set before the first
    relation layer) have their pairs among themselves scored once instead of once per graph.
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

    def forward(self, mol: Tensor, shared: int = 0) -> Tensor:
        """mol [B, n, d] -> adjacency [B, n, n]; row r lists the edges r -> c. The first `shared`
        molecules must have the same state in every graph; they are only exploited in eval mode."""
        batch, n, _ = mol.shape
        rows, cols = torch.triu_indices(n, n, offset=1, device=mol.device)
        if self.training:
            pair_scores = self._train_scores(mol, rows, cols)
        else:
            pair_scores, rows, cols = self._eval_scores(mol, rows, cols, shared if batch > 1 else 0)
        scores = _symmetric_matrix(pair_scores, rows, cols, n)
        top = scores.topk(min(self.top_k, n), dim=-1).indices
        return scores * torch.zeros_like(scores).scatter(-1, top, 1.0)

    def _train_scores(self, mol: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        """[B, P] pair scores with grid BatchNorm statistics and channel dropout."""
        batch, n, dim = mol.shape
        x = _pair_features(mol, rows, cols)  # [B, P, d], P = n(n-1)/2
        diagonal = mol.new_ones(batch, 1, dim)  # exp(-|h_i - h_i|), the same for every i
        for linear, norm in zip(self.hidden, self.norms):
            x, diagonal = _grid_batch_norm(full_precision(linear(x)), full_precision(linear(diagonal)), norm, n)
            x, diagonal = F.leaky_relu(x), F.leaky_relu(diagonal)
            if self.dropout > 0:  # channel dropout, as Dropout2d on [B, C, n, n]
                keep = F.dropout(x.new_ones(batch, 1, x.shape[-1]), self.dropout, training=True)
                x, diagonal = x * keep, diagonal * keep
        return torch.sigmoid(self.out(x).squeeze(-1))

    def _eval_scores(self, mol: Tensor, rows: Tensor, cols: Tensor, shared: int) -> tuple[Tensor, Tensor, Tensor]:
        """[B, P] pair scores with folded BatchNorm, and the (rows, cols) order they come in: pairs
        among the shared molecules first (scored on graph 0, broadcast), then the others."""
        batch = mol.shape[0]
        among_shared = cols < shared  # rows < cols, so both ends are shared
        shared_x = _pair_features(mol[:1], rows[among_shared], cols[among_shared])
        own_x = _pair_features(mol, rows[~among_shared], cols[~among_shared])
        scores = [self._folded_mlp(x) for x in (shared_x, own_x)]
        pair_scores = torch.cat([scores[0].expand(batch, -1), scores[1]], dim=1)
        order = torch.cat([among_shared.nonzero().squeeze(1), (~among_shared).nonzero().squeeze(1)])
        return pair_scores, rows[order], cols[order]

    def _folded_mlp(self, x: Tensor) -> Tensor:
        """Pair scores [..., P] of pair features [..., P, d], each eval-mode BatchNorm folded into its linear layer."""
        for linear, norm in zip(self.hidden, self.norms):
            scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
            x = F.leaky_relu(F.linear(x, linear.weight * scale.unsqueeze(1), norm.bias - norm.running_mean * scale))
        return torch.sigmoid(self.out(x).squeeze(-1))


def _pair_features(mol: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """exp(-|h_r - h_c|) [B, P, d] for the pairs (rows[p], cols[p]): the differences come from one
    matrix product with a +1/-1 selection matrix instead of two gathers."""
    difference = torch.zeros(rows.numel(), mol.shape[1], dtype=mol.dtype, device=mol.device)
    pair_index = torch.arange(rows.numel(), device=mol.device)
    difference[pair_index, rows] = 1.0
    difference[pair_index, cols] = -1.0
    differences = difference @ mol
    if not differences.requires_grad:  # no graph to keep (eval, the pool): in place, no new [B, P, d] tensors
        return differences.abs_().neg_().exp_()
    # |z| as z * sign(z) with the sign held in int8: autograd keeps one byte per element for the
    # backward instead of abs's float input, and the derivative (sign(z), constant) is the same.
    signs = torch.sign(differences.detach()).to(torch.int8)
    return torch.exp(-(differences * signs))


def _symmetric_matrix(values: Tensor, rows: Tensor, cols: Tensor, n: int) -> Tensor:
    """[B, P] values of the pairs (rows[p] < cols[p]) -> [B, n, n] symmetric matrix with a zero diagonal."""
    index = torch.full((n, n), values.shape[1], dtype=torch.long, device=values.device)
    index[rows, cols] = torch.arange(values.shape[1], device=values.device)
    index[cols, rows] = index[rows, cols]
    padded = torch.cat([values, values.new_zeros(values.shape[0], 1)], dim=1)
    return padded[:, index.reshape(-1)].reshape(-1, n, n)


def _grid_batch_norm(pairs: Tensor, diagonal: Tensor, norm: nn.BatchNorm1d, n: int) -> tuple[Tensor, Tensor]:
    """Train-mode BatchNorm over the n x n grid of each graph, given its unordered pairs [B, P, C]
    and its diagonal [B, 1, C]: batch statistics with each pair counted twice and the diagonal n
    times; the running statistics move as nn.BatchNorm2d would move them."""
    count = pairs.shape[0] * n * n
    mean = (2.0 * pairs.sum(dim=(0, 1)) + n * diagonal.sum(dim=(0, 1))) / count
    centered, centered_diagonal = pairs - mean, diagonal - mean
    var = (2.0 * centered.square().sum(dim=(0, 1)) + n * centered_diagonal.square().sum(dim=(0, 1))) / count
    with torch.no_grad():
        momentum = norm.momentum
        norm.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
        norm.running_var.mul_(1 - momentum).add_(momentum * var.detach() * count / (count - 1))
        norm.num_batches_tracked.add_(1)
    scale = norm.weight * torch.rsqrt(var + norm.eps)
    return torch.addcmul(norm.bias, centered, scale), torch.addcmul(norm.bias, centered_diagonal, scale)


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

    def forward(self, h: Tensor, weights: Tensor, counts: Tensor, type_sums: Tensor, shared: int = 0) -> Tensor:
        """h [B, N, d]; the first `shared` nodes have the same state in every graph, so in eval mode
        their linear maps are computed once."""
        batch, n_nodes, dim = h.shape
        shared = 0 if self.training else shared
        summed = weights.transpose(1, 2) @ _rowwise(self.neighbor, h, shared) + type_sums @ self.edge_type.weight
        out = full_precision(summed / counts.clamp(min=1).unsqueeze(-1) + _rowwise(self.root, h, shared))
        out = F.leaky_relu(self.norm(out.reshape(-1, dim)).reshape(batch, n_nodes, dim))
        return dropout(out, self.dropout, self.training)


def _rowwise(linear: nn.Linear, h: Tensor, shared: int) -> Tensor:
    """linear(h) for h [B, N, d] whose first `shared` rows are the same in every graph."""
    if shared == 0 or h.shape[0] == 1:
        return linear(h)
    return torch.cat([linear(h[:1, :shared]).expand(h.shape[0], -1, -1), linear(h[:, shared:])], dim=1)


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

    def forward(self, properties: Tensor, molecules: Tensor, structure: EpisodeStructure,
                shared_molecules: int = 0) -> Tensor:
        """properties [T, d] shared by all graphs (or [B, T, d] per graph), molecules [B, n_s + 1, d]
        -> node states [B, N, d]. The first `shared_molecules` molecules (the support set) are the
        same in every graph; until the first node update mixes in each graph's query, eval mode
        computes their part once."""
        batch = molecules.shape[0]
        num_props = properties.shape[-2]
        properties = dropout(properties, self.input_dropout, self.training)
        molecules = dropout(molecules, self.input_dropout, self.training)
        h = torch.cat([properties.expand(batch, -1, -1), molecules], dim=1)
        shared_nodes = (num_props if properties.dim() == 2 else 0) + shared_molecules
        for index, layer in enumerate(self.layers):
            weights, counts, type_sums = structure.weights, structure.counts, structure.type_sums
            first = index == 0
            if self.mol_mol_edges:
                adjacency = layer.edges(h[:, num_props:], shared_molecules if first else 0)
                pad = (num_props, 0, num_props, 0)
                weights = weights + F.pad(adjacency, pad)
                counts = counts + F.pad((adjacency > 0).to(h.dtype).sum(dim=1), (num_props, 0))
                mol_type = F.pad(adjacency.sum(dim=1), (num_props, 0)).unsqueeze(-1)
                type_sums = type_sums + F.pad(mol_type, (MOL_MOL, NUM_EDGE_TYPES - 1 - MOL_MOL))
            h = layer.nodes(h, weights, counts, type_sums, shared_nodes if first else 0)
        return h
