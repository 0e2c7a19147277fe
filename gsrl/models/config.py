"""The networks' config sections, kept free of the experiment schema so the networks depend on nothing above."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EncoderConfig:
    conv: str = "gin"  # gin | gcn | graphsage | gat (Hu et al. state_dict format)
    num_layers: int = 5
    emb_dim: int = 300
    dropout: float = 0.1
    pooling: str = "mean"
    pretrained: str | None = None  # path to a Hu et al. checkpoint (Pre-GS-Meta)


@dataclass
class RelationConfig:
    num_layers: int = 2
    edge_hidden_dim: int = 100
    edge_mlp_layers: int = 2
    dropout: float = 0.1
    input_dropout: float = 0.1
    top_k: int | None = None  # None: shots - 1 (at least 1), as in GS-Meta
    mol_mol_edges: bool = True  # ablation "w/o m2m" sets False
    unk_edges: bool = True  # edges for missing labels
    unk_weight: float = 1.0


@dataclass(frozen=True)
class NetworkConfig:
    """What building an episode network needs: the encoder, the relation net and its top-k."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    relation: RelationConfig = field(default_factory=RelationConfig)
    relation_top_k: int = 1
