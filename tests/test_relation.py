"""The dense relation network equals the sparse message-passing formulation it replaces."""

import torch
from torch_geometric.utils import scatter

from gsrl.models.relation import NUM_EDGE_TYPES, EdgeScorer, EpisodeStructure, RelationNet


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


def grid_edge_scores(scorer, mol):
    """Reference: the edge MLP over every ordered pair of the n x n grid, BatchNorm as BatchNorm2d."""
    x = torch.exp(-(mol.unsqueeze(2) - mol.unsqueeze(1)).abs())  # [B, n, n, d]
    for linear, norm in zip(scorer.hidden, scorer.norms):
        y = linear(x)
        if scorer.training:
            mean, var = y.mean(dim=(0, 1, 2)), y.var(dim=(0, 1, 2), unbiased=False)
        else:
            mean, var = norm.running_mean, norm.running_var
        x = torch.nn.functional.leaky_relu((y - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias)
    scores = torch.sigmoid(scorer.out(x).squeeze(-1)) * (1 - torch.eye(mol.shape[1], dtype=mol.dtype))
    top = scores.topk(scorer.top_k, dim=-1).indices
    return scores * torch.zeros_like(scores).scatter(-1, top, 1.0)


def edge_scorer(seed=0):
    torch.manual_seed(seed)
    scorer = EdgeScorer(dim=6, hidden_dim=4, num_layers=3, dropout=0.0, top_k=3).double()
    for norm in scorer.norms:  # non-trivial affine and running statistics
        norm.weight.data.uniform_(0.5, 1.5), norm.bias.data.uniform_(-0.5, 0.5)
        norm.running_mean.uniform_(-0.5, 0.5), norm.running_var.uniform_(0.5, 2.0)
    return scorer


def test_edge_scorer_equals_the_full_grid_mlp_in_train_mode_with_its_running_statistics():
    scorer, reference = edge_scorer(), edge_scorer()
    mol = torch.randn(3, 5, 6, dtype=torch.float64)
    assert torch.allclose(scorer.train()(mol), grid_edge_scores(reference.train(), mol), atol=1e-12)
    expected = torch.exp(-(mol.unsqueeze(2) - mol.unsqueeze(1)).abs())
    for linear, norm in zip(reference.hidden, reference.norms):  # nn.BatchNorm2d's running statistics
        flat = linear(expected).reshape(-1, norm.num_features)
        mean, var = flat.mean(0), flat.var(0, unbiased=False)
        norm.running_mean.mul_(0.9).add_(0.1 * mean)
        norm.running_var.mul_(0.9).add_(0.1 * flat.var(0, unbiased=True))
        normalized = (linear(expected) - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
        expected = torch.nn.functional.leaky_relu(normalized)
    for ours, theirs in zip(scorer.norms, reference.norms):
        assert torch.allclose(ours.running_mean, theirs.running_mean, atol=1e-12)
        assert torch.allclose(ours.running_var, theirs.running_var, atol=1e-12)


def test_edge_scorer_eval_mode_folds_batch_norm_and_scores_shared_pairs_once():
    scorer = edge_scorer().eval()
    support = torch.randn(5, 6, dtype=torch.float64)
    mol = torch.cat([support.expand(4, -1, -1), torch.randn(4, 1, 6, dtype=torch.float64)], dim=1)
    reference = grid_edge_scores(scorer, mol)
    assert torch.allclose(scorer(mol), reference, atol=1e-12)
    assert torch.allclose(scorer(mol, shared=5), reference, atol=1e-12)


def test_relation_net_eval_mode_with_a_shared_support_equals_the_unshared_computation():
    torch.manual_seed(1)
    dim, n_support, batch, num_props = 8, 6, 4, 3
    net = RelationNet(dim, num_layers=2, edge_hidden_dim=4, edge_layers=2, dropout=0.1, input_dropout=0.1,
                      top_k=3).double()
    net.train()(torch.randn(num_props, dim, dtype=torch.float64), torch.randn(batch, n_support + 1, dim,
                dtype=torch.float64), EpisodeStructure.build(torch.zeros(n_support, num_props, dtype=torch.float64),
                                                             torch.zeros(batch, num_props - 1, dtype=torch.float64),
                                                             True, 1.0))  # running statistics away from 0 / 1
    net.eval()
    properties = torch.randn(num_props, dim, dtype=torch.float64)
    support = torch.randn(n_support, dim, dtype=torch.float64)
    molecules = torch.cat([support.expand(batch, -1, -1), torch.randn(batch, 1, dim, dtype=torch.float64)], dim=1)
    labels = torch.randint(0, 2, (n_support, num_props)).double()
    structure = EpisodeStructure.build(labels, torch.randint(0, 2, (batch, num_props - 1)).double(), True, 1.0)
    assert torch.allclose(net(properties, molecules, structure, shared_molecules=n_support),
                          net(properties, molecules, structure), atol=1e-12)
