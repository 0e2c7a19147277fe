"""The GS-Meta network: molecule encoder, property embeddings, relation GNN, classifier, subgraph embedding."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gsrl.models.config import EncoderConfig, NetworkConfig, RelationConfig
from gsrl.models.episode_network import EpisodeNetwork, EpisodeOutput
from gsrl.models.functional import full_precision
from gsrl.models.relation import EpisodeStructure, RelationNet


class GSMetaModel(EpisodeNetwork):
    """Every support molecule is classified inside every query graph of the relation net (the
    support logits are [B, n_s]); g summarises the relation net's node states."""

    parameter_groups = ("encoder", "relation", "classifier", "property_embeddings")

    def __init__(self, num_properties: int, train_properties: list[int], encoder: EncoderConfig,
                 relation: RelationConfig, top_k: int):
        super().__init__(encoder)
        rel = relation
        dim = encoder.emb_dim
        self.property_embeddings = nn.Embedding(num_properties, dim)
        with torch.no_grad():  # properties never seen in meta-training start at zero
            unseen = torch.ones(num_properties, dtype=torch.bool)
            unseen[train_properties] = False
            self.property_embeddings.weight[unseen] = 0.0
        self.relation = RelationNet(dim, rel.num_layers, rel.edge_hidden_dim, rel.edge_mlp_layers, rel.dropout,
                                    rel.input_dropout, top_k, rel.mol_mol_edges)
        self.classifier = nn.Sequential(nn.Linear(2 * dim, dim), nn.BatchNorm1d(dim), nn.ReLU(), nn.Linear(dim, 1))
        self.unk_edges = rel.unk_edges
        self.unk_weight = rel.unk_weight

    @classmethod
    def for_dataset(cls, dataset, network: NetworkConfig) -> GSMetaModel:
        return cls(dataset.num_properties, list(dataset.train_properties), network.encoder, network.relation,
                   network.relation_top_k)

    def node_states(self, support: Tensor, query: Tensor, properties: Tensor, support_labels: Tensor,
                    query_labels: Tensor) -> Tensor:
        """Relation-net node states [B, N, d] of the B query graphs. support [n_s, d] and support_labels
        [n_s, T] are shared by all graphs; query [B, d]; properties [T] ids, target first; query_labels
        [B, T] (the target column is never used as an edge)."""
        support_labels, query_labels = support_labels.to(support.dtype), query_labels.to(support.dtype)
        structure = EpisodeStructure.build(support_labels, query_labels[:, 1:], self.unk_edges, self.unk_weight)
        molecules = torch.cat([support.expand(query.shape[0], -1, -1), query.unsqueeze(1)], dim=1)
        return self.relation(self.property_embeddings(properties), molecules, structure,
                             shared_molecules=support.shape[-2] if support.dim() == 2 else 0)

    @staticmethod
    def subgraph_embedding(h: Tensor) -> Tensor:
        """g = h_target + sigmoid(mean of the other nodes), on node states averaged over the query
        graphs (dimension -3); leading dimensions index episodes."""
        mean_graph = h.mean(dim=-3)
        return mean_graph[..., 0, :] + torch.sigmoid(mean_graph[..., 1:, :].mean(dim=-2))

    def classify(self, pairs: Tensor) -> Tensor:
        """Logits of [molecule state || target state] rows; the BatchNorm after the first linear layer
        sees float32 even when that layer ran in bf16."""
        return self.classifier[1:](full_precision(self.classifier[0](pairs)))

    def relate(self, support: Tensor, query: Tensor, properties: Tensor, support_labels: Tensor,
               query_labels: Tensor, with_support_logits: bool = True) -> EpisodeOutput:
        """Logits and g of one episode from molecule embeddings (shapes as in `node_states`)."""
        h = self.node_states(support, query, properties, support_labels, query_labels)
        batch, n_support, num_props = query.shape[0], support.shape[-2], properties.shape[-1]
        target = h[:, :1]
        support_logits = None
        if with_support_logits:
            pairs = torch.cat([h[:, num_props:num_props + n_support], target.expand(-1, n_support, -1)], dim=-1)
            support_logits = self.classify(pairs.reshape(batch * n_support, -1)).reshape(batch, n_support)
        query_logits = self.classify(torch.cat([h[:, -1], h[:, 0]], dim=-1)).squeeze(-1)
        return EpisodeOutput(support_logits, query_logits, self.subgraph_embedding(h))
