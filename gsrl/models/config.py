"""The networks' config sections, kept free of the experiment schema so the networks depend on nothing above."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from gsrl.domains import Dropout, NonNegativeFloat, OneOf, PositiveInt

CONV_TYPES: tuple[str, ...] = ("gin", "gcn", "graphsage", "gat")
POOLING_TYPES: tuple[str, ...] = ("mean", "sum", "max")


@dataclass
class EncoderConfig:
    conv: Annotated[str, OneOf(CONV_TYPES)] = "gin"  # gin | gcn | graphsage | gat (Hu et al. state_dict format)
    num_layers: PositiveInt = 5
    emb_dim: PositiveInt = 300
    dropout: Dropout = 0.1
    pooling: Annotated[str, OneOf(POOLING_TYPES)] = "mean"
    pretrained: str | None = None  # path to a Hu et al. checkpoint (Pre-GS-Meta)


@dataclass
class RelationConfig:
    num_layers: PositiveInt = 2
    edge_hidden_dim: PositiveInt = 100
    edge_mlp_layers: PositiveInt = 2
    dropout: Dropout = 0.1
    input_dropout: Dropout = 0.1
    top_k: PositiveInt | None = None  # None: shots - 1 (at least 1), as in GS-Meta
    mol_mol_edges: bool = True  # ablation "w/o m2m" sets False
    unk_edges: bool = True  # edges for missing labels
    unk_weight: NonNegativeFloat = 1.0


@dataclass(frozen=True)
class NetworkConfig:
    """What building an episode network needs: the encoder, the relation net and its top-k."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    relation: RelationConfig = field(default_factory=RelationConfig)
    relation_top_k: int = 1
