"""Edge splits for link prediction (Kipf & Welling 2016: 85 / 5 / 10) and leak-free negatives.

Validation and test negatives are drawn once, together (so they never repeat each other), from
pairs that are edges in no split; training negatives are redrawn every epoch from the same pool, so
the model is never trained to score a held-out positive low and no held-out negative is a real
edge. Self-pairs are never negatives. Every draw takes an explicit ``torch.Generator`` (PyG's
``negative_sampling`` draws from Python's global ``random``), so a split depends on its seed only
and a resumed job continues the same negative stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Data

__all__ = ["LinkSplit", "sample_non_edges", "split_links"]


def _pair_keys(pairs: Tensor, num_nodes: int) -> Tensor:
    """One integer per undirected pair: min · N + max."""
    low, high = pairs.min(dim=0).values, pairs.max(dim=0).values
    return low * num_nodes + high


def sample_non_edges(edges: Tensor, num_nodes: int, count: int, generator: torch.Generator) -> Tensor:
    """``count`` distinct undirected pairs ``[2, count]`` (smaller id first) that are not in ``edges``."""
    forbidden = _pair_keys(edges, num_nodes).unique()
    available = num_nodes * (num_nodes - 1) // 2 - forbidden.numel()
    if count > available:
        raise ValueError(f"asked for {count} negatives but the graph has only {available} non-edges")
    chosen = torch.empty(0, dtype=torch.long)
    while chosen.numel() < count:
        draw = torch.randint(num_nodes, (2, 2 * (count - chosen.numel()) + 16), generator=generator)
        draw = draw[:, draw[0] != draw[1]]
        keys = _pair_keys(draw, num_nodes)
        keys = keys[~torch.isin(keys, forbidden) & ~torch.isin(keys, chosen)]
        unique, first = _first_occurrences(keys)
        chosen = torch.cat([chosen, unique[first.argsort()]])
    chosen = chosen[:count]
    return torch.stack([chosen // num_nodes, chosen % num_nodes])


def _first_occurrences(keys: Tensor) -> tuple[Tensor, Tensor]:
    """Distinct keys and the position where each first occurs (to keep the draw order)."""
    unique, inverse = keys.unique(return_inverse=True)
    first = torch.full((unique.numel(),), keys.numel(), dtype=torch.long).scatter_reduce(
        0, inverse, torch.arange(keys.numel()), reduce="amin")
    return unique, first


@dataclass
class LinkSplit:
    """One seed's split. Pair tensors hold each undirected pair once, shape ``[2, count]``."""

    num_nodes: int
    message_edges: Tensor  # training edges in both directions: what the encoder propagates over
    train_pos: Tensor
    val_pos: Tensor
    val_neg: Tensor
    test_pos: Tensor
    test_neg: Tensor
    known_edges: Tensor  # every positive of every split: never a negative

    def train_negatives(self, generator: torch.Generator) -> Tensor:
        """One fresh negative per training positive."""
        return sample_non_edges(self.known_edges, self.num_nodes, self.train_pos.size(1), generator)

    def sizes(self) -> dict[str, int]:
        return {"train_pos": self.train_pos.size(1), "val_pos": self.val_pos.size(1), "val_neg": self.val_neg.size(1),
                "test_pos": self.test_pos.size(1), "test_neg": self.test_neg.size(1)}

    def to(self, device: torch.device) -> LinkSplit:
        """Tensors used on the model's device; ``known_edges`` stays where sampling happens (CPU)."""
        moved = {name: getattr(self, name).to(device)
                 for name in ("message_edges", "train_pos", "val_pos", "val_neg", "test_pos", "test_neg")}
        return LinkSplit(num_nodes=self.num_nodes, known_edges=self.known_edges, **moved)


def split_links(data: Data, seed: int, val_fraction: float = 0.05, test_fraction: float = 0.10) -> LinkSplit:
    """Split the undirected edges of ``data`` at random (seeded) into train / validation / test."""
    generator = torch.Generator().manual_seed(seed)
    edges = data.edge_index
    undirected = edges[:, edges[0] < edges[1]]
    undirected = undirected[:, torch.randperm(undirected.size(1), generator=generator)]
    total = undirected.size(1)
    n_val, n_test = int(val_fraction * total), int(test_fraction * total)
    test_pos, val_pos, train_pos = undirected[:, :n_test], undirected[:, n_test:n_test + n_val], \
        undirected[:, n_test + n_val:]
    negatives = sample_non_edges(edges, data.num_nodes, n_val + n_test, generator)
    return LinkSplit(
        num_nodes=data.num_nodes,
        message_edges=torch.cat([train_pos, train_pos.flip(0)], dim=1),
        train_pos=train_pos,
        val_pos=val_pos,
        val_neg=negatives[:, :n_val],
        test_pos=test_pos,
        test_neg=negatives[:, n_val:],
        known_edges=edges,
    )
