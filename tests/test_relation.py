"""The dense relation network equals the sparse message-passing formulation it replaces."""

import torch
from torch_geometric.utils import scatter

from gsrl.models.relation import NUM_EDGE_TYPES, EpisodeStructure, RelationNet


def sparse_relation(net: RelationNet, properties, molecules, support_labels, query_aux, unk_weight):
    """Reference: per query graph, explicit edge lists and scatter-mean, as a sparse GNN would run it."""
    batch, n_mol, dim = molecules.shape
    num_props = properties.shape[0]
    n_nodes = num_props + n_mol
    h = torch.cat([properties.unsqueeze(0).expand(batch, -1, -1), molecules], dim=1)
    for layer in net.layers:
        adjacency = layer.edges(h[:, num_props:])
        outs = []
        for b in range(batch):
            src, dst, types, weights = [], [], [], []
            labels = torch.cat([support_labels, torch.cat([torch.full((1,), float("nan")), query_aux[b]]).unsqueeze(0)])
            for m in range(n_mol):
                for t in range(num_props):
                    value = labels[m, t]
                    if m == n_mol - 1 and t == 0:
                        continue  # no query-target edge
                    kind = 3 if torch.isnan(value) else (2 if value == 1 else 1)
                    w = unk_weight if kind == 3 else 1.0
                    for s, d in ((num_props + m, t), (t, num_props + m)):
                        src.append(s), dst.append(d), types.append(kind), weights.append(torch.tensor(w))
            rows, cols = torch.nonzero(adjacency[b] > 0, as_tuple=True)
            for r, c in zip(rows.tolist(), cols.tolist()):
                src.append(num_props + r), dst.append(num_props + c), types.append(0)
                weights.append(adjacency[b, r, c])
            src, dst, types = torch.tensor(src), torch.tensor(dst), torch.tensor(types)
            weights = torch.stack(weights).to(h.dtype)
            node = layer.nodes
            message = (node.neighbor(h[b])[src] + node.edge_type.weight[types]) * weights.unsqueeze(-1)
            outs.append(scatter(message, dst, dim=0, dim_size=n_nodes, reduce="mean") + node.root(h[b]))
        out = torch.stack(outs)
        out = torch.nn.functional.leaky_relu(layer.nodes.norm(out.reshape(-1, dim)).reshape(batch, n_nodes, dim))
        h = out
    return h


def test_dense_relation_matches_sparse_reference():
    torch.manual_seed(0)
    dim, n_support, batch, num_props = 8, 6, 4, 3
    net = RelationNet(dim, num_layers=2, edge_hidden_dim=4, edge_layers=2, dropout=0.0, input_dropout=0.0, top_k=3)
    net = net.double().train()  # train-mode BatchNorm: statistics over every node of the episode
    properties = torch.randn(num_props, dim, dtype=torch.float64)
    molecules = torch.randn(batch, n_support + 1, dim, dtype=torch.float64)
    support_labels = torch.tensor([[0, 1, float("nan")], [0, 0, 1], [0, float("nan"), 0],
                                   [1, 1, 1], [1, 0, float("nan")], [1, 1, 0]], dtype=torch.float64)
    query_aux = torch.tensor([[1, 0], [float("nan"), 1], [0, 0], [1, float("nan")]], dtype=torch.float64)
    structure = EpisodeStructure.build(support_labels, query_aux, unk_edges=True, unk_weight=0.5)
    dense = net(properties, molecules, structure)
    sparse = sparse_relation(net, properties, molecules, support_labels, query_aux, unk_weight=0.5)
    assert torch.allclose(dense, sparse, atol=1e-10)


def test_structure_counts_and_no_query_target_edge():
    support_labels = torch.tensor([[0.0, 1.0], [1.0, float("nan")]])
    query_aux = torch.tensor([[float("nan")], [0.0]])
    with_unk = EpisodeStructure.build(support_labels, query_aux, unk_edges=True, unk_weight=1.0)
    without_unk = EpisodeStructure.build(support_labels, query_aux, unk_edges=False, unk_weight=1.0)
    # node order: [target, aux, support0, support1, query]
    assert with_unk.weights[0, 4, 0] == 0 and with_unk.weights[0, 0, 4] == 0  # query never touches the target
    assert with_unk.counts[0].tolist() == [2, 3, 2, 2, 1]
    assert without_unk.counts[0].tolist() == [2, 1, 2, 1, 0]
    assert without_unk.counts[1].tolist() == [2, 2, 2, 1, 1]
    assert with_unk.type_sums.shape[-1] == NUM_EDGE_TYPES
