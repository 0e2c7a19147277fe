"""GAE and VGAE (Kipf & Welling 2016) from PyG, over a two-layer GCN, GraphSAGE or GAT encoder."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import GAE, VGAE, GATConv, GCNConv, SAGEConv

__all__ = ["AUTOENCODERS", "CONVS", "GraphEncoder", "build_autoencoder"]

AUTOENCODERS = ("gae", "vgae")
CONVS = ("gcn", "graphsage", "gat")


def _conv(kind: str, in_channels: int, out_channels: int, heads: int, last: bool) -> nn.Module:
    if kind == "gcn":
        return GCNConv(in_channels, out_channels)
    if kind == "graphsage":
        return SAGEConv(in_channels, out_channels)
    if kind == "gat":  # hidden layer: `heads` heads concatenated; output layers: heads averaged
        if last:
            return GATConv(in_channels, out_channels, heads=heads, concat=False)
        if out_channels % heads:
            raise ValueError(f"gat: hidden_channels {out_channels} is not divisible by heads {heads}")
        return GATConv(in_channels, out_channels // heads, heads=heads)
    raise ValueError(f"unknown conv {kind!r}; known: {', '.join(CONVS)}")


class GraphEncoder(nn.Module):
    """conv → ReLU → conv, giving the latent means; with ``variational`` a parallel conv gives log σ."""

    def __init__(self, conv: str, in_channels: int, hidden_channels: int, latent_channels: int,
                 variational: bool, heads: int = 1) -> None:
        super().__init__()
        self.hidden = _conv(conv, in_channels, hidden_channels, heads, last=False)
        self.mu = _conv(conv, hidden_channels, latent_channels, heads, last=True)
        self.logstd = _conv(conv, hidden_channels, latent_channels, heads, last=True) if variational else None

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        hidden = torch.relu(self.hidden(x, edge_index))
        if self.logstd is None:
            return self.mu(hidden, edge_index)
        return self.mu(hidden, edge_index), self.logstd(hidden, edge_index)


def build_autoencoder(model: str, conv: str, in_channels: int, hidden_channels: int = 32, latent_channels: int = 16,
                      heads: int = 1) -> GAE:
    """A PyG ``GAE`` or ``VGAE`` (inner-product decoder) around a :class:`GraphEncoder`."""
    if model not in AUTOENCODERS:
        raise ValueError(f"unknown autoencoder {model!r}; known: {', '.join(AUTOENCODERS)}")
    variational = model == "vgae"
    encoder = GraphEncoder(conv, in_channels, hidden_channels, latent_channels, variational, heads)
    return VGAE(encoder) if variational else GAE(encoder)
