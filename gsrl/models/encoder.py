"""Molecule encoder: the GNN of Hu et al. 2020, "Strategies for Pre-training Graph Neural Networks".

The module reproduces the published ``GNN`` of snap-stanford/pretrain-gnns closely enough that its
state_dict has the same keys and shapes, so the released checkpoints (``chem/model_*/*.pth``) load
with ``strict=True``. Keeping the exact layout is the point: GS-Meta starts meta-training from those
pretrained weights, and any renamed or reshaped tensor would silently fall back to random init.

Input featurization (built by the data pipeline, see ``/work/shared/data/README.md``):

* ``x``          long ``[n_nodes, 2]``: atom type index 0..119 (119 = mask), chirality tag 0..2.
* ``edge_index`` long ``[2, n_edges]``: every bond stored in both directions.
* ``edge_attr``  long ``[n_edges, 2]``: bond type 0..3 (4 = self-loop, 5 = mask),
  bond direction 0..2.

The encoder is written so that it can be driven by ``torch.func.functional_call`` with
second-order autograd (MAML-style inner loops): parameters are only ever read through the module
attributes at call time, and no tensor that may require grad is modified in place.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing, global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.nn.inits import glorot, zeros
from torch_geometric.utils import scatter, softmax

from gsrl.checkpoint import load_on_cpu
from gsrl.models.config import CONV_TYPES, POOLING_TYPES
from gsrl.models.functional import dropout, full_precision

__all__ = [
    "CONV_TYPES",
    "JK_MODES",
    "POOLING_TYPES",
    "MoleculeEncoder",
    "add_bond_self_loops",
    "count_parameters",
]

JK_MODES: tuple[str, ...] = ("last", "concat", "max", "sum")

# Vocabulary sizes fixed by the pretrain-gnns featurization; the checkpoints depend on them.
NUM_ATOM_TYPES = 120  # atomic number 1..118 -> 0..117, plus two extra rows; 119 is the mask token
NUM_CHIRALITY_TAGS = 3
NUM_BOND_TYPES = 6  # single, double, triple, aromatic, self-loop, mask
NUM_BOND_DIRECTIONS = 3

SELF_LOOP_BOND_TYPE = 4
SELF_LOOP_BOND_DIRECTION = 0

GAT_HEADS = 2
GAT_NEGATIVE_SLOPE = 0.2

_POOLS: dict[str, Callable[..., Tensor]] = {
    "mean": global_mean_pool,
    "sum": global_add_pool,
    "max": global_max_pool,
}


def count_parameters(module: nn.Module, *, include_buffers: bool = False) -> int:
    """Number of scalars in ``module``.

    By default only parameters are counted (what an optimiser trains). With
    ``include_buffers=True`` every state_dict entry is counted, which is how the pretrain-gnns
    checkpoint sizes are usually quoted (BatchNorm running stats and ``num_batches_tracked``
    included).
    """
    if include_buffers:
        return sum(t.numel() for t in module.state_dict().values())
    return sum(p.numel() for p in module.parameters())


def add_bond_self_loops(
    edge_index: Tensor, edge_attr: Tensor, num_nodes: int
) -> tuple[Tensor, Tensor]:
    """Append one self-loop per node, featurized as bond type 4 / direction 0.

    Every published conv layer adds these loops itself; the encoder does it once per forward pass
    instead and hands the augmented graph to all layers, which gives the same result for less work.
    Loops go after the real edges, as ``torch_geometric.utils.add_self_loops`` orders them.
    """
    loop = torch.arange(num_nodes, dtype=edge_index.dtype, device=edge_index.device)
    loop_index = torch.stack([loop, loop], dim=0)
    loop_attr = edge_attr.new_tensor([SELF_LOOP_BOND_TYPE, SELF_LOOP_BOND_DIRECTION]).expand(
        num_nodes, 2
    )
    return torch.cat([edge_index, loop_index], dim=1), torch.cat([edge_attr, loop_attr], dim=0)


def _gcn_norm(edge_index: Tensor, num_nodes: int, dtype: torch.dtype) -> Tensor:
    """Symmetric normalisation ``deg^-1/2[row] * deg^-1/2[col]`` of the published GCN layer.

    The degree is counted on ``edge_index[0]`` of the graph *with* self-loops, so it is always >= 1
    and the inverse square root is finite.
    """
    row, col = edge_index
    ones = torch.ones(row.numel(), dtype=dtype, device=row.device)
    deg = scatter(ones, row, dim=0, dim_size=num_nodes, reduce="sum")
    deg_inv_sqrt = deg.pow(-0.5)
    return deg_inv_sqrt[row] * deg_inv_sqrt[col]


class _BondConv(MessagePassing):
    """Shared part of the four conv layers: the learned bond-type + bond-direction embedding.

    Subclasses call :meth:`_init_bond_embeddings` after creating their own sub-modules so the
    state_dict key order matches the published checkpoints (it does not matter for loading, but it
    keeps printed state_dicts comparable side by side).

    All layers expect ``edge_index`` / ``edge_attr`` that already contain the self-loops from
    :func:`add_bond_self_loops`.
    """

    edge_embedding1: nn.Embedding
    edge_embedding2: nn.Embedding

    def __init__(self, aggr: str) -> None:
        # node_dim=0: the GAT layer propagates [n, heads, dim] tensors, whose node axis is 0.
        super().__init__(aggr=aggr, node_dim=0)

    def _init_bond_embeddings(self, width: int) -> None:
        self.edge_embedding1 = nn.Embedding(NUM_BOND_TYPES, width)
        self.edge_embedding2 = nn.Embedding(NUM_BOND_DIRECTIONS, width)
        nn.init.xavier_uniform_(self.edge_embedding1.weight)
        nn.init.xavier_uniform_(self.edge_embedding2.weight)

    def embed_bonds(self, edge_attr: Tensor) -> Tensor:
        """``edge_embedding1[bond type] + edge_embedding2[bond direction]`` per edge."""
        return self.edge_embedding1(edge_attr[:, 0]) + self.edge_embedding2(edge_attr[:, 1])


class GINConv(_BondConv):
    """GIN with edge features: ``MLP(sum_j (h_j + e_ij))`` over in-edges, self-loop included.

    The sum is computed as ``A h + C E``: ``A`` is the sparse in-edge adjacency (self-loops
    included) and ``C`` counts each node's incoming bond types and directions, so the edge term
    is a tiny matrix product with the stacked bond embeddings ``E`` instead of per-edge tensors.
    Both operators depend only on the graph and are built once per forward (`gin_operators`).
    """

    def __init__(self, emb_dim: int) -> None:
        super().__init__(aggr="add")
        self.mlp = nn.Sequential(
            nn.Linear(emb_dim, 2 * emb_dim), nn.ReLU(), nn.Linear(2 * emb_dim, emb_dim)
        )
        self._init_bond_embeddings(emb_dim)

    def forward(self, x: Tensor, adjacency: Tensor, bond_counts: Tensor) -> Tensor:
        bond_table = torch.cat([self.edge_embedding1.weight, self.edge_embedding2.weight])
        return self.mlp(torch.sparse.mm(adjacency, x) + bond_counts.to(x.dtype) @ bond_table)


def gin_operators(edge_index: Tensor, edge_attr: Tensor, num_nodes: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """(sparse in-edge adjacency [n, n], incoming bond type/direction counts [n, 6 + 3]) of a
    graph whose self-loops were already added."""
    src, dst = edge_index
    ones = torch.ones(src.numel(), dtype=dtype, device=src.device)
    adjacency = torch.sparse_coo_tensor(torch.stack([dst, src]), ones, (num_nodes, num_nodes),
                                        check_invariants=False).coalesce()
    columns = torch.cat([edge_attr[:, 0], NUM_BOND_TYPES + edge_attr[:, 1]])
    counts = torch.zeros(num_nodes, NUM_BOND_TYPES + NUM_BOND_DIRECTIONS, dtype=dtype, device=src.device)
    counts.index_put_((torch.cat([dst, dst]), columns), torch.cat([ones, ones]), accumulate=True)
    return adjacency, counts


class GCNConv(_BondConv):
    """GCN with edge features: ``sum_j norm_ij (W h_j + e_ij)``."""

    def __init__(self, emb_dim: int) -> None:
        super().__init__(aggr="add")
        self.linear = nn.Linear(emb_dim, emb_dim)
        self._init_bond_embeddings(emb_dim)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, norm: Tensor) -> Tensor:
        """``norm`` comes from :func:`_gcn_norm`; it depends only on the graph, so the encoder
        computes it once per forward pass rather than once per layer."""
        return self.propagate(
            edge_index, x=self.linear(x), edge_emb=self.embed_bonds(edge_attr), norm=norm
        )

    def message(self, x_j: Tensor, edge_emb: Tensor, norm: Tensor) -> Tensor:
        return norm.unsqueeze(-1) * (x_j + edge_emb)


class GraphSAGEConv(_BondConv):
    """GraphSAGE with edge features: L2-normalised ``mean_j (W h_j + e_ij)``."""

    def __init__(self, emb_dim: int) -> None:
        super().__init__(aggr="mean")
        self.linear = nn.Linear(emb_dim, emb_dim)
        self._init_bond_embeddings(emb_dim)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        return self.propagate(edge_index, x=self.linear(x), edge_emb=self.embed_bonds(edge_attr))

    def message(self, x_j: Tensor, edge_emb: Tensor) -> Tensor:
        return x_j + edge_emb

    def update(self, aggr_out: Tensor) -> Tensor:
        return F.normalize(aggr_out, p=2.0, dim=-1)


class GATConv(_BondConv):
    """Two-head GAT with edge features, in the semantics its pretrained weights were trained with.

    Each head works in the full ``emb_dim`` width (``weight_linear`` maps d -> heads * d); the
    head outputs are averaged and a bias is added.
    """

    def __init__(self, emb_dim: int, heads: int = GAT_HEADS) -> None:
        super().__init__(aggr="add")
        self.emb_dim = emb_dim
        self.heads = heads
        self.weight_linear = nn.Linear(emb_dim, heads * emb_dim)
        self.att = nn.Parameter(torch.empty(1, heads, 2 * emb_dim))
        self.bias = nn.Parameter(torch.empty(emb_dim))
        self._init_bond_embeddings(heads * emb_dim)
        glorot(self.att)
        zeros(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        d = self.emb_dim
        x_heads = self.weight_linear(x).view(-1, self.heads, d)
        edge_emb = self.embed_bonds(edge_attr).view(-1, self.heads, d)
        # The published logit is <att, [x_i || x_j + e_ij]>. It splits into a target part, a source
        # part and an edge part; the two node parts are computed once per node and gathered per
        # edge, which halves the per-edge work compared with concatenating edge-sized tensors.
        att_target, att_source = self.att[..., :d], self.att[..., d:]
        return self.propagate(
            edge_index,
            x=x_heads,
            edge_emb=edge_emb,
            score_target=(x_heads * att_target).sum(dim=-1),
            score_source=(x_heads * att_source).sum(dim=-1),
            att_source=att_source,
        )

    def message(
        self,
        x_j: Tensor,
        edge_emb: Tensor,
        score_target_i: Tensor,
        score_source_j: Tensor,
        att_source: Tensor,
        edge_index_i: Tensor,
        size_i: int | None,
    ) -> Tensor:
        logits = score_target_i + score_source_j + (edge_emb * att_source).sum(dim=-1)
        logits = F.leaky_relu(logits, GAT_NEGATIVE_SLOPE)
        # Attention is normalised over each receiver's incoming edges. The pretrained checkpoints
        # were trained with PyG 1.0.3, whose propagate grouped the softmax and the sum at the same
        # node; later PyG releases run the published line grouped by the sender instead, which
        # does not match the weights. gsrl follows the semantics the weights were trained with.
        alpha = softmax(logits, edge_index_i, num_nodes=size_i)
        return (x_j + edge_emb) * alpha.unsqueeze(-1)

    def update(self, aggr_out: Tensor) -> Tensor:
        return aggr_out.mean(dim=1) + self.bias


_CONV_CLASSES: dict[str, type[_BondConv]] = {
    "gin": GINConv,
    "gcn": GCNConv,
    "graphsage": GraphSAGEConv,
    "gat": GATConv,
}


class MoleculeEncoder(nn.Module):
    """pretrain-gnns ``GNN`` plus graph pooling; state_dict keys match the published checkpoints.

    Per layer: conv -> BatchNorm1d -> ReLU (skipped after the last layer) -> dropout.

    Args:
        conv: one of :data:`CONV_TYPES`.
        num_layers: number of message-passing layers (5 in the paper).
        emb_dim: hidden width (300 in the paper).
        dropout: dropout probability after every layer.
        jk: how layer outputs are combined into node embeddings. ``"last"`` uses the final layer;
            ``"concat"``, ``"max"`` and ``"sum"`` combine the input embedding and every layer's
            output, as in the published code. ``"concat"`` widens the output to
            ``(num_layers + 1) * emb_dim``; see :attr:`output_dim`.
        pooling: graph readout, one of :data:`POOLING_TYPES`.
    """

    def __init__(
        self,
        conv: str = "gin",
        num_layers: int = 5,
        emb_dim: int = 300,
        dropout: float = 0.1,
        jk: str = "last",
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        if conv not in CONV_TYPES:
            raise ValueError(f"unknown conv type {conv!r}; expected one of {CONV_TYPES}")
        if jk not in JK_MODES:
            raise ValueError(f"unknown jk mode {jk!r}; expected one of {JK_MODES}")
        if pooling not in POOLING_TYPES:
            raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLING_TYPES}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")

        self.conv_type = conv
        self.num_layers = num_layers
        self.emb_dim = emb_dim
        self.dropout = dropout
        self.jk = jk
        self.pooling = pooling

        self.x_embedding1 = nn.Embedding(NUM_ATOM_TYPES, emb_dim)
        self.x_embedding2 = nn.Embedding(NUM_CHIRALITY_TAGS, emb_dim)
        nn.init.xavier_uniform_(self.x_embedding1.weight)
        nn.init.xavier_uniform_(self.x_embedding2.weight)

        conv_cls = _CONV_CLASSES[conv]
        self.gnns = nn.ModuleList([conv_cls(emb_dim) for _ in range(num_layers)])
        self.batch_norms = nn.ModuleList([nn.BatchNorm1d(emb_dim) for _ in range(num_layers)])

    @property
    def output_dim(self) -> int:
        """Width of the node / graph embeddings this encoder returns."""
        if self.jk == "concat":
            return (self.num_layers + 1) * self.emb_dim
        return self.emb_dim

    def node_embeddings(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        """Per-atom embeddings, ``[n_nodes, output_dim]``."""
        num_nodes = x.size(0)
        h = self.x_embedding1(x[:, 0]) + self.x_embedding2(x[:, 1])

        # Self-loops (and the GIN operators or GCN normalisation) depend only on the graph: build
        # them once here instead of in every layer.
        loop_index, loop_attr = add_bond_self_loops(edge_index, edge_attr, num_nodes)
        graph: tuple[Tensor, ...] = (loop_index, loop_attr)
        extra: dict[str, Tensor] = {}
        if self.conv_type == "gin":
            graph = gin_operators(loop_index, loop_attr, num_nodes, h.dtype)
        elif self.conv_type == "gcn":
            extra["norm"] = _gcn_norm(loop_index, num_nodes, h.dtype)

        layer_outputs = [h]
        for layer, (conv, batch_norm) in enumerate(zip(self.gnns, self.batch_norms)):
            h = batch_norm(full_precision(conv(h, *graph, **extra)))
            if layer < self.num_layers - 1:
                h = F.relu(h)
            h = dropout(h, self.dropout, self.training)
            layer_outputs.append(h)

        if self.jk == "last":
            return layer_outputs[-1]
        if self.jk == "concat":
            return torch.cat(layer_outputs, dim=1)
        stacked = torch.stack(layer_outputs, dim=0)
        if self.jk == "max":
            return stacked.max(dim=0).values
        return stacked.sum(dim=0)

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, num_graphs: int
    ) -> Tensor:
        """Pooled molecule embeddings, ``[num_graphs, output_dim]``.

        ``num_graphs`` is passed explicitly so pooling never has to read ``batch.max()`` (a
        device sync) and empty trailing graphs still get a row.
        """
        nodes = self.node_embeddings(x, edge_index, edge_attr)
        return _POOLS[self.pooling](nodes, batch, size=num_graphs)

    def load_pretrained(self, path: str | Path) -> None:
        """Load a pretrain-gnns checkpoint (a plain state_dict) strictly.

        Raises ``ValueError`` naming the file, this encoder's conv type and the offending keys when
        the checkpoint does not fit, e.g. a GAT checkpoint loaded into a GIN encoder. Note that GCN
        and GraphSAGE checkpoints have identical keys and shapes, so one cannot be told from the
        other here; pick the conv type that matches the file name.
        """
        path = Path(path)
        state = load_on_cpu(path)
        if not isinstance(state, dict):
            raise ValueError(
                f"{path}: expected a state_dict, got {type(state).__name__} "
                f"(encoder conv type {self.conv_type!r})"
            )
        # Check keys and shapes up front: load_state_dict copies the matching tensors before it
        # reports size mismatches, and a failed load should leave the encoder untouched.
        own = self.state_dict()
        missing = sorted(own.keys() - state.keys())
        unexpected = sorted(state.keys() - own.keys())
        wrong_shape = sorted(
            f"{key}: file {tuple(state[key].shape)} vs encoder {tuple(own[key].shape)}"
            for key in own.keys() & state.keys()
            if state[key].shape != own[key].shape
        )
        if missing or unexpected or wrong_shape:
            raise ValueError(
                f"checkpoint {path} does not fit a {self.conv_type!r} encoder "
                f"(num_layers={self.num_layers}, emb_dim={self.emb_dim}): "
                f"missing keys {missing}, unexpected keys {unexpected}, "
                f"shape mismatches {wrong_shape}"
            )
        self.load_state_dict(state, strict=True)
