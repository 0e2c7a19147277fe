"""Hop distances, k-hop substructures and context rings of a molecular graph.

Context prediction (Hu et al. 2020) pairs, around a center atom,

* the substructure: every atom at most ``k`` hops from the center (``k`` = encoder layers), and
* the context: every atom more than ``r1`` and at most ``r2`` hops away,

with ``r1 = k - 1`` so the two overlap. The atoms in both are the context anchors. The published
code takes the context as the atoms within ``r2`` hops minus those within ``r1`` hops, which is
the half-open ring ``r1 < d <= r2`` used here; with ``r1 = k - 1`` the anchors are exactly the atoms
``k`` hops away. Atoms in another fragment than the center (salts, mixtures) are in neither set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import subgraph

UNREACHABLE = -1


def hop_distances(edge_index: Tensor, num_nodes: int, source: int) -> np.ndarray:
    """Shortest-path length in bonds from ``source`` to every node; ``UNREACHABLE`` where none."""
    senders, receivers = edge_index.numpy()
    distances = np.full(num_nodes, UNREACHABLE, dtype=np.int64)
    distances[source] = 0
    frontier = np.array([source])
    hops = 0
    while frontier.size:
        hops += 1
        reached = receivers[np.isin(senders, frontier)]
        frontier = np.unique(reached[distances[reached] == UNREACHABLE])
        distances[frontier] = hops
    return distances


@dataclass(frozen=True)
class SubstructureContextSplit:
    """Sorted node ids of the substructure, the context ring and their overlap (the anchors)."""

    substructure: np.ndarray
    context: np.ndarray
    anchors: np.ndarray


def split_substructure_context(
    distances: np.ndarray, substructure_radius: int, context_inner: int, context_outer: int
) -> SubstructureContextSplit:
    """Substructure ``d <= substructure_radius``, context ``context_inner < d <= context_outer``."""
    reachable = distances != UNREACHABLE
    in_substructure = reachable & (distances <= substructure_radius)
    in_context = reachable & (distances > context_inner) & (distances <= context_outer)
    return SubstructureContextSplit(
        substructure=np.flatnonzero(in_substructure),
        context=np.flatnonzero(in_context),
        anchors=np.flatnonzero(in_substructure & in_context),
    )


def induced_subgraph(data: Data, nodes: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
    """``(x, edge_index, edge_attr)`` of the subgraph on sorted ``nodes``, renumbered ``0..len(nodes)-1``.

    Node ``nodes[i]`` becomes node ``i``, so positions inside the subgraph are found with
    ``np.searchsorted(nodes, original_ids)``.
    """
    subset = torch.from_numpy(nodes)
    edge_index, edge_attr = subgraph(
        subset, data.edge_index, data.edge_attr, relabel_nodes=True, num_nodes=data.num_nodes
    )
    return data.x[subset], edge_index, edge_attr
