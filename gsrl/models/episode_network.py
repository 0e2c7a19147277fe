"""What every meta-learner's network offers the shared episode runtime.

A network is a molecule encoder (Hu et al. layout, so pretrained encoders load into any of them)
plus a head. `relate` turns molecule embeddings of one episode into support logits (the inner-loop
loss), query logits and the episode's embedding g (the scheduler's observation and the contrastive
term). Episodes, MAML, evaluation and logging only ever call `encode`, `relate` and `forward`, so
meta-learners differ in their head and adaptation rule alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from torch import Tensor, nn
from torch_geometric.data import Batch

from gsrl.errors import ConfigError
from gsrl.models.config import EncoderConfig, NetworkConfig
from gsrl.models.encoder import MoleculeEncoder


@dataclass
class EpisodeOutput:
    support_logits: Tensor | None  # [B, n_s] (B query graphs) or [1, n_s] when support is classified alone
    query_logits: Tensor | None  # [B]; None when the forward had no query molecules
    subgraph_embedding: Tensor  # g [d]


class EpisodeNetwork(nn.Module, ABC):
    """Encoder + head; subclasses name their parameter groups and implement `relate`."""

    # Top-level module names that `meta.adapt` may list ("all" means every one of them).
    parameter_groups: tuple[str, ...] = ("encoder",)
    # Whether the inner-loop (support) loss looks at the query molecules. Heads that classify each
    # support molecule on its own say False, and the inner loop then skips encoding the queries.
    support_loss_needs_query: bool = True

    def __init__(self, encoder: EncoderConfig):
        super().__init__()
        enc = encoder
        self.encoder = MoleculeEncoder(conv=enc.conv, num_layers=enc.num_layers, emb_dim=enc.emb_dim,
                                       dropout=enc.dropout, pooling=enc.pooling)

    @classmethod
    def for_dataset(cls, dataset, network: NetworkConfig) -> EpisodeNetwork:
        """A freshly initialised network for a few-shot dataset (heads that embed properties need its size)."""
        return cls(network.encoder)

    def encode(self, graphs: Batch) -> Tensor:
        return self.encoder(graphs.x, graphs.edge_index, graphs.edge_attr, graphs.batch, graphs.num_graphs)

    def forward(self, support: Batch, query: Batch | None, properties: Tensor, support_labels: Tensor,
                query_labels: Tensor | None, with_support_logits: bool = True) -> EpisodeOutput:
        """One episode from molecule graphs. Support and query are encoded as separate batches (their
        BatchNorm statistics are separate, as in GS-Meta)."""
        support_embeddings = self.encode(support)
        query_embeddings = None if query is None else self.encode(query)
        return self.relate(support_embeddings, query_embeddings, properties, support_labels, query_labels,
                           with_support_logits)

    @abstractmethod
    def relate(self, support: Tensor, query: Tensor | None, properties: Tensor, support_labels: Tensor,
               query_labels: Tensor | None, with_support_logits: bool = True) -> EpisodeOutput:
        """Logits and g of one episode from molecule embeddings: support [n_s, d], query [B, d],
        properties [T] (target first), support_labels [n_s, T], query_labels [B, T]."""

    def parameter_names(self, groups: list[str]) -> list[str]:
        """Names of the parameters in the given groups ("all" = every parameter), in module order."""
        unknown = sorted(set(groups) - set(self.parameter_groups) - {"all"})
        if unknown:
            raise ConfigError(f"meta.adapt names {unknown}, which {type(self).__name__} does not have; "
                              f"its groups are {list(self.parameter_groups)} (or 'all')")
        wanted = set(self.parameter_groups) if "all" in groups else set(groups)
        return [name for name, _ in self.named_parameters() if name.split(".", 1)[0] in wanted]
