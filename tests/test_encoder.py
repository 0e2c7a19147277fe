"""Tests for gsrl.models.encoder.

They pin down the three things the rest of the project relies on: the pretrain-gnns checkpoints
load strictly, each conv layer computes what the published model computes (checked against slow
loop-based references), and the encoder survives functional_call with second-order autograd.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from gsrl.models.encoder import (
    CONV_TYPES,
    JK_MODES,
    POOLING_TYPES,
    MoleculeEncoder,
    count_parameters,
)

CHECKPOINTS = [
    f"{conv}_{kind}.pth"
    for conv in ("gcn", "graphsage", "gat")
    for kind in ("supervised_contextpred", "contextpred", "supervised")
]


def _checkpoint(data_root: Path, name: str) -> Path:
    """Path of a pretrain-gnns checkpoint; skips the test where the shared data is absent."""
    path = data_root / "pretrained" / name
    if not path.is_file():
        pytest.skip(f"pretrained checkpoint not available: {path}")
    return path


def _random_batch(
    num_graphs: int, atoms_per_graph: int, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    """Chain molecules with one extra ring bond each, bonds stored in both directions."""
    gen = torch.Generator().manual_seed(seed)
    xs, edge_indices, edge_attrs, batches = [], [], [], []
    for g in range(num_graphs):
        n = atoms_per_graph
        atom = torch.randint(0, 119, (n,), generator=gen)
        chirality = torch.randint(0, 3, (n,), generator=gen)
        xs.append(torch.stack([atom, chirality], dim=1))
        src = torch.cat([torch.arange(n - 1), torch.tensor([0])])
        dst = torch.cat([torch.arange(1, n), torch.tensor([n - 1])])
        bond_type = torch.randint(0, 4, (src.numel(),), generator=gen)
        bond_dir = torch.randint(0, 3, (src.numel(),), generator=gen)
        offset = g * n
        edge_indices.append(torch.stack([torch.cat([src, dst]), torch.cat([dst, src])]) + offset)
        attr = torch.stack([bond_type, bond_dir], dim=1)
        edge_attrs.append(torch.cat([attr, attr]))
        batches.append(torch.full((n,), g))
    return (
        torch.cat(xs),
        torch.cat(edge_indices, dim=1),
        torch.cat(edge_attrs),
        torch.cat(batches),
        num_graphs,
    )


# ----------------------------------------------------------------------------------------------
# Checkpoints and parameter counts


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_checkpoint_loads_strictly(name: str, data_root: Path) -> None:
    path = _checkpoint(data_root, name)
    conv = name.split("_")[0]
    encoder = MoleculeEncoder(conv)
    encoder.load_pretrained(path)

    file_state = torch.load(path, map_location="cpu", weights_only=True)
    own_state = encoder.state_dict()
    assert list(own_state.keys()) == list(file_state.keys())
    for key, value in file_state.items():
        assert torch.equal(own_state[key], value), key

    # The loaded model runs and gives finite embeddings.
    encoder.eval()
    with torch.no_grad():
        out = encoder(*_random_batch(3, 6))
    assert out.shape == (3, 300)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("name", "wrong_conv"),
    [
        ("gat_supervised_contextpred.pth", "gin"),
        ("gat_supervised_contextpred.pth", "gcn"),
        ("gcn_supervised_contextpred.pth", "gat"),
        ("graphsage_supervised_contextpred.pth", "gin"),
    ],
)
def test_checkpoint_into_wrong_conv_type_raises(
    name: str, wrong_conv: str, data_root: Path
) -> None:
    path = _checkpoint(data_root, name)
    encoder = MoleculeEncoder(wrong_conv)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    with pytest.raises(ValueError) as excinfo:
        encoder.load_pretrained(path)
    message = str(excinfo.value)
    assert name in message
    assert repr(wrong_conv) in message
    assert "gnns.0." in message  # the offending keys are listed
    # A failed load leaves the encoder as it was.
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_checkpoint_with_wrong_width_raises_without_partial_load(data_root: Path) -> None:
    path = _checkpoint(data_root, "gcn_supervised.pth")
    encoder = MoleculeEncoder("gcn", emb_dim=64)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    with pytest.raises(ValueError, match="shape mismatches") as excinfo:
        encoder.load_pretrained(path)
    assert "gcn_supervised.pth" in str(excinfo.value)
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_parameter_counts() -> None:
    gin = MoleculeEncoder("gin")
    # 5 x (300*600+600 + 600*300+300 + 6*300 + 3*300) + 5 x 600 BN + 120*300 + 3*300
    assert count_parameters(gin) == 1_857_900

    # Checkpoint sizes as quoted in the data README count every state_dict entry: parameters,
    # BatchNorm running stats (2 x 300 per layer) and num_batches_tracked (1 per layer).
    for conv, params, entries in (
        ("gcn", 504_900, 47),
        ("graphsage", 504_900, 47),
        ("gat", 977_400, 57),
    ):
        encoder = MoleculeEncoder(conv)
        assert count_parameters(encoder) == params, conv
        assert count_parameters(encoder, include_buffers=True) == params + 5 * 601, conv
        assert len(encoder.state_dict()) == entries, conv
    assert count_parameters(MoleculeEncoder("gcn"), include_buffers=True) == 507_905
    assert count_parameters(MoleculeEncoder("gat"), include_buffers=True) == 980_405


def test_gin_state_dict_layout() -> None:
    d = 300
    shapes = {k: tuple(v.shape) for k, v in MoleculeEncoder("gin").state_dict().items()}
    expected = {"x_embedding1.weight": (120, d), "x_embedding2.weight": (3, d)}
    for i in range(5):
        expected |= {
            f"gnns.{i}.mlp.0.weight": (2 * d, d),
            f"gnns.{i}.mlp.0.bias": (2 * d,),
            f"gnns.{i}.mlp.2.weight": (d, 2 * d),
            f"gnns.{i}.mlp.2.bias": (d,),
            f"gnns.{i}.edge_embedding1.weight": (6, d),
            f"gnns.{i}.edge_embedding2.weight": (3, d),
            f"batch_norms.{i}.weight": (d,),
            f"batch_norms.{i}.bias": (d,),
            f"batch_norms.{i}.running_mean": (d,),
            f"batch_norms.{i}.running_var": (d,),
            f"batch_norms.{i}.num_batches_tracked": (),
        }
    assert shapes == expected


def test_embeddings_use_xavier_uniform() -> None:
    encoder = MoleculeEncoder("gin")
    for weight in (encoder.x_embedding1.weight, encoder.gnns[0].edge_embedding1.weight):
        bound = math.sqrt(6.0 / sum(weight.shape))
        assert weight.abs().max() <= bound
        assert weight.abs().max() > 0.9 * bound  # spread over the range, not N(0, 1)


# ----------------------------------------------------------------------------------------------
# Layer semantics against loop-based references

# 0 --single/none-- 1 --double/endupright-- 2 : every bond listed in both directions.
TINY_X = torch.tensor([[5, 0], [7, 1], [6, 2]])
TINY_BONDS = [(0, 1, 0, 0), (1, 2, 1, 1)]


def _tiny_graph() -> tuple[Tensor, Tensor, Tensor]:
    directed = [(s, t, bt, bd) for s, t, bt, bd in TINY_BONDS] + [
        (t, s, bt, bd) for s, t, bt, bd in TINY_BONDS
    ]
    edge_index = torch.tensor([[s for s, *_ in directed], [t for _, t, *_ in directed]])
    edge_attr = torch.tensor([[bt, bd] for *_, bt, bd in directed])
    return TINY_X, edge_index, edge_attr


def _edges_with_loops(n: int) -> list[tuple[int, int, int, int]]:
    """(source, target, bond type, bond direction) for every directed edge plus self-loops."""
    directed = [(s, t, bt, bd) for s, t, bt, bd in TINY_BONDS] + [
        (t, s, bt, bd) for s, t, bt, bd in TINY_BONDS
    ]
    return directed + [(i, i, 4, 0) for i in range(n)]


def _reference_conv(
    conv_type: str, conv: torch.nn.Module, h: Tensor, softmax_by: str = "target"
) -> Tensor:
    """Slow per-edge computation of one published conv layer, written from its equations."""
    n, d = h.shape
    edges = _edges_with_loops(n)

    def bond(bt: int, bd: int) -> Tensor:
        return conv.edge_embedding1.weight[bt] + conv.edge_embedding2.weight[bd]

    out = [torch.zeros(d, dtype=h.dtype) for _ in range(n)]
    if conv_type == "gin":
        for s, t, bt, bd in edges:
            out[t] = out[t] + h[s] + bond(bt, bd)
        return torch.stack([conv.mlp(o) for o in out])
    if conv_type == "gcn":
        wh = conv.linear(h)
        deg = [sum(1 for s, *_ in edges if s == v) for v in range(n)]
        for s, t, bt, bd in edges:
            out[t] = out[t] + (wh[s] + bond(bt, bd)) / math.sqrt(deg[s] * deg[t])
        return torch.stack(out)
    if conv_type == "graphsage":
        wh = conv.linear(h)
        for t in range(n):
            incoming = [wh[s] + bond(bt, bd) for s, tt, bt, bd in edges if tt == t]
            mean = torch.stack(incoming).mean(dim=0)
            out[t] = mean / mean.norm()
        return torch.stack(out)
    if conv_type == "gat":
        heads = conv.heads
        wh = conv.weight_linear(h).view(n, heads, d)
        att = conv.att[0]
        messages, logits = [], []
        for s, t, bt, bd in edges:
            m = wh[s] + bond(bt, bd).view(heads, d)
            logit = torch.stack(
                [att[k, :d] @ wh[t, k] + att[k, d:] @ m[k] for k in range(heads)]
            )
            messages.append(m)
            logits.append(F.leaky_relu(logit, 0.2))
        group = 0 if softmax_by == "source" else 1
        result = torch.zeros(n, heads, d, dtype=h.dtype)
        for e, edge in enumerate(edges):
            peers = [f for f, other in enumerate(edges) if other[group] == edge[group]]
            denom = torch.stack([logits[f].exp() for f in peers]).sum(dim=0)
            alpha = logits[e].exp() / denom
            result[edge[1]] = result[edge[1]] + alpha.unsqueeze(-1) * messages[e]
        return result.mean(dim=1) + conv.bias
    raise AssertionError(conv_type)


def _reference_batch_norm(bn: torch.nn.BatchNorm1d, h: Tensor) -> Tensor:
    return (h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def _randomise_batch_norm_stats(encoder: MoleculeEncoder) -> None:
    """Non-trivial BN statistics and affine terms, so the eval-mode check exercises them."""
    with torch.no_grad():
        for bn in encoder.batch_norms:
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("conv_type", CONV_TYPES)
def test_layers_match_loop_reference(conv_type: str) -> None:
    torch.manual_seed(0)
    encoder = MoleculeEncoder(conv_type, num_layers=2, emb_dim=4, dropout=0.5).double().eval()
    _randomise_batch_norm_stats(encoder)
    x, edge_index, edge_attr = _tiny_graph()

    with torch.no_grad():
        got = encoder.node_embeddings(x, edge_index, edge_attr)
        h = encoder.x_embedding1.weight[x[:, 0]] + encoder.x_embedding2.weight[x[:, 1]]
        for layer in range(2):
            h = _reference_conv(conv_type, encoder.gnns[layer], h)
            h = _reference_batch_norm(encoder.batch_norms[layer], h)
            if layer == 0:
                h = torch.relu(h)  # ReLU between layers only

    assert got.shape == (3, 4)
    assert (got < 0).any()  # no ReLU after the last layer
    torch.testing.assert_close(got, h, rtol=1e-10, atol=1e-12)


def test_gat_softmax_groups_by_receiving_node() -> None:
    """Attention is normalised over each receiver's incoming edges (the semantics the pretrained
    weights were trained with); grouping by the sender gives other numbers."""
    torch.manual_seed(1)
    encoder = MoleculeEncoder("gat", num_layers=1, emb_dim=4).double().eval()
    x, edge_index, edge_attr = _tiny_graph()
    conv = encoder.gnns[0]
    with torch.no_grad():
        h = encoder.x_embedding1.weight[x[:, 0]] + encoder.x_embedding2.weight[x[:, 1]]
        got = encoder.node_embeddings(x, edge_index, edge_attr)
        by_target = _reference_batch_norm(encoder.batch_norms[0], _reference_conv("gat", conv, h))
        by_source = _reference_batch_norm(
            encoder.batch_norms[0], _reference_conv("gat", conv, h, softmax_by="source")
        )
    torch.testing.assert_close(got, by_target, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(got, by_source, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("conv_type", CONV_TYPES)
def test_self_loop_uses_bond_type_four(conv_type: str) -> None:
    torch.manual_seed(0)
    encoder = MoleculeEncoder(conv_type, num_layers=2, emb_dim=8).double().eval()
    x = torch.tensor([[5, 0]])  # one atom, no bonds: only the self-loop carries a bond feature
    edge_index = torch.empty(2, 0, dtype=torch.long)
    edge_attr = torch.empty(0, 2, dtype=torch.long)
    data = (x, edge_index, edge_attr, torch.zeros(1, dtype=torch.long), 1)
    params = dict(encoder.named_parameters())
    key = "gnns.0.edge_embedding1.weight"

    def run(row: int) -> Tensor:
        """Output with one row of the first layer's bond-type table shifted."""
        shift = torch.zeros_like(params[key])
        shift[row] = 1.0
        with torch.no_grad():
            return functional_call(encoder, {**params, key: params[key] + shift}, data)

    with torch.no_grad():
        base = encoder(*data)
    assert not torch.allclose(run(4), base)
    torch.testing.assert_close(run(5), base, rtol=0, atol=0)
    torch.testing.assert_close(run(0), base, rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------
# Readout options


@pytest.mark.parametrize("jk", JK_MODES)
def test_jk_modes(jk: str) -> None:
    torch.manual_seed(0)
    encoder = MoleculeEncoder("gin", num_layers=3, emb_dim=8, jk=jk).eval()
    x, edge_index, edge_attr, batch, num_graphs = _random_batch(4, 5)
    with torch.no_grad():
        nodes = encoder.node_embeddings(x, edge_index, edge_attr)
        graphs = encoder(x, edge_index, edge_attr, batch, num_graphs)
        h0 = encoder.x_embedding1(x[:, 0]) + encoder.x_embedding2(x[:, 1])
    expected_dim = 32 if jk == "concat" else 8
    assert encoder.output_dim == expected_dim
    assert nodes.shape == (20, expected_dim)
    assert graphs.shape == (4, expected_dim)
    if jk == "concat":
        torch.testing.assert_close(nodes[:, :8], h0)  # the input embedding comes first
    if jk == "max":
        assert (nodes >= h0).all()


@pytest.mark.parametrize("pooling", POOLING_TYPES)
def test_pooling(pooling: str) -> None:
    torch.manual_seed(0)
    encoder = MoleculeEncoder("gcn", num_layers=2, emb_dim=8, pooling=pooling).eval()
    x, edge_index, edge_attr, batch, _ = _random_batch(3, 4)
    with torch.no_grad():
        nodes = encoder.node_embeddings(x, edge_index, edge_attr)
        # One extra, empty graph at the end still gets a row.
        graphs = encoder(x, edge_index, edge_attr, batch, 4)
    assert graphs.shape == (4, 8)
    for g in range(3):
        members = nodes[batch == g]
        expected = {"mean": members.mean(0), "sum": members.sum(0), "max": members.max(0).values}
        torch.testing.assert_close(graphs[g], expected[pooling])


@pytest.mark.parametrize(
    "kwargs",
    [{"conv": "gine"}, {"jk": "attention"}, {"pooling": "attention"}, {"num_layers": 0},
     {"dropout": 1.0}],
)
def test_invalid_arguments_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        MoleculeEncoder(**kwargs)


# ----------------------------------------------------------------------------------------------
# Meta-learning use: functional_call and second-order autograd


def _meta_gradient(
    encoder: MoleculeEncoder, second_order: bool, inner_lr: float = 0.5
) -> list[Tensor]:
    """Gradient of the query loss after one SGD step on the support loss (MAML)."""
    support = _random_batch(4, 6, seed=1)
    query = _random_batch(4, 6, seed=2)
    gen = torch.Generator().manual_seed(3)
    head = torch.randn(encoder.output_dim, dtype=torch.float64, generator=gen)
    y_support = torch.randn(4, dtype=torch.float64, generator=gen)
    y_query = torch.randn(4, dtype=torch.float64, generator=gen)

    params = dict(encoder.named_parameters())
    buffers = dict(encoder.named_buffers())

    def loss(weights: dict[str, Tensor], data: tuple) -> Tensor:
        emb = functional_call(encoder, {**weights, **buffers}, data)
        return F.mse_loss(emb @ head, y_support if data is support else y_query)

    inner = loss(params, support)
    grads = torch.autograd.grad(inner, list(params.values()), create_graph=second_order)
    fast = {k: p - inner_lr * g for (k, p), g in zip(params.items(), grads)}
    outer = loss(fast, query)
    return list(torch.autograd.grad(outer, list(params.values())))


@pytest.mark.parametrize("conv_type", CONV_TYPES)
def test_functional_call_second_order(conv_type: str) -> None:
    torch.manual_seed(0)
    encoder = MoleculeEncoder(conv_type, num_layers=3, emb_dim=16, dropout=0.0).double().train()

    second = _meta_gradient(encoder, second_order=True)
    first = _meta_gradient(encoder, second_order=False)

    assert all(torch.isfinite(g).all() for g in second)
    total = torch.sqrt(sum((g ** 2).sum() for g in second))
    assert total > 0
    # Every weight tensor gets some gradient (edge/atom rows that never occur stay zero).
    assert all(g.abs().sum() > 0 for g in second)
    # Second-order terms really flow: the result differs from the first-order approximation.
    difference = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(second, first)))
    assert difference > 1e-6 * total


@pytest.mark.parametrize(("jk", "pooling"), [("concat", "max"), ("max", "sum"), ("sum", "mean")])
def test_second_order_with_other_readouts(jk: str, pooling: str) -> None:
    torch.manual_seed(0)
    encoder = MoleculeEncoder("gin", num_layers=2, emb_dim=8, dropout=0.0, jk=jk, pooling=pooling)
    grads = _meta_gradient(encoder.double().train(), second_order=True)
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_functional_call_uses_given_parameters() -> None:
    """No cached weights: outputs follow the tensors handed to functional_call."""
    torch.manual_seed(0)
    encoder = MoleculeEncoder("gat", num_layers=2, emb_dim=8).eval()
    data = _random_batch(2, 5)
    params = dict(encoder.named_parameters())
    with torch.no_grad():
        same = functional_call(encoder, params, data)
        torch.testing.assert_close(same, encoder(*data), rtol=0, atol=0)
        key = "gnns.1.weight_linear.weight"
        changed = functional_call(encoder, {**params, key: params[key] * 2.0}, data)
    assert not torch.allclose(same, changed)


# ----------------------------------------------------------------------------------------------
# Train / eval behaviour


def test_eval_is_deterministic_and_train_uses_dropout() -> None:
    torch.manual_seed(0)
    data = _random_batch(4, 6)
    encoder = MoleculeEncoder("gin", num_layers=3, emb_dim=16, dropout=0.5)

    encoder.eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(*data), encoder(*data), rtol=0, atol=0)

    encoder.train()
    with torch.no_grad():
        assert not torch.allclose(encoder(*data), encoder(*data))

    # Without dropout, train mode (batch statistics) is deterministic again: the randomness
    # above comes from dropout only.
    no_dropout = MoleculeEncoder("gin", num_layers=3, emb_dim=16, dropout=0.0).train()
    with torch.no_grad():
        torch.testing.assert_close(no_dropout(*data), no_dropout(*data), rtol=0, atol=0)
