"""Tests for gsrl.pretraining: the five pretraining strategies of Hu et al. 2020.

Every strategy must learn on a tiny real corpus and leave an encoder that loads strictly into a
fresh MoleculeEncoder; the random per-molecule transforms are checked for what would silently
corrupt pretraining: masked atom types leaking into the input, wrong substructure / context sets,
negative edges that are bonds and negatives drawn from the same graph.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from gsrl.config import load_config
from gsrl.data.featurize import smiles_to_graph
from gsrl.data.features import MASK_ATOM_TYPE, MASK_BOND_TYPE
from gsrl.models.encoder import MoleculeEncoder
from gsrl.pretraining import (
    STRATEGIES,
    AttributeMasking,
    AttributeMaskingSettings,
    ContextPrediction,
    EdgePrediction,
    Infomax,
    PretrainingStrategy,
    SupervisedPretraining,
    SupervisedSettings,
    make_strategy,
    other_graph_index,
)
from gsrl.pretraining.substructure import hop_distances, split_substructure_context

CORPUS_SIZE = 24
TRAIN_STEPS = 30
ENCODER_ARGS = {"conv": "gin", "num_layers": 3, "emb_dim": 32, "dropout": 0.0}
SETTINGS = {
    "attribute_masking": {"mask_edge": True},
    "context_prediction": None,
    "edge_prediction": None,
    "infomax": None,
    "supervised": {"num_tasks": 2},
}


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    """The models are tiny; one thread avoids contention with whatever else runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(data_root: Path) -> list[Data]:
    """The first BBBP molecules, each with two label columns: p_np and an all-missing one."""
    path = data_root / "moleculenet" / "bbbp.csv"
    if not path.is_file():
        pytest.skip(f"BBBP not available: {path}")
    graphs = []
    with path.open() as handle:
        for row in csv.DictReader(handle):
            graph = smiles_to_graph(row["smiles"])
            if graph is not None:
                graph.y = torch.tensor([[float(row["p_np"]), math.nan]])
                graphs.append(graph)
            if len(graphs) == CORPUS_SIZE:
                return graphs
    raise AssertionError("BBBP has fewer parseable molecules than the test needs")


def _graph(smiles: str) -> Data:
    graph = smiles_to_graph(smiles)
    assert graph is not None
    return graph


def _bonds(graph: Data) -> set[tuple[int, int]]:
    return {tuple(pair) for pair in graph.edge_index.t().tolist()}


@pytest.fixture(scope="module", params=sorted(STRATEGIES))
def trained(request: pytest.FixtureRequest, corpus: list[Data]) -> tuple[PretrainingStrategy, list[float]]:
    """A strategy trained with Adam on one fixed prepared batch of the corpus, and its losses."""
    torch.manual_seed(0)
    strategy = make_strategy(request.param, MoleculeEncoder(**ENCODER_ARGS), SETTINGS[request.param])
    rng = np.random.default_rng(0)
    batch = Batch.from_data_list([strategy.prepare(graph, rng) for graph in corpus])
    optimizer = torch.optim.Adam(strategy.parameters(), lr=1e-3)
    losses = []
    for _ in range(TRAIN_STEPS):
        optimizer.zero_grad()
        loss, metrics = strategy(batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        assert metrics["loss"] == pytest.approx(losses[-1])
    return strategy, losses


def test_loss_decreases(trained: tuple[PretrainingStrategy, list[float]]) -> None:
    _, losses = trained
    assert all(math.isfinite(loss) for loss in losses)
    assert np.mean(losses[-3:]) < 0.75 * np.mean(losses[:3]), losses


def test_encoder_state_dict_round_trip(trained: tuple[PretrainingStrategy, list[float]]) -> None:
    strategy, _ = trained
    state = strategy.encoder.state_dict()
    fresh = MoleculeEncoder(**ENCODER_ARGS)
    assert not all(torch.equal(state[key], value) for key, value in fresh.state_dict().items())
    fresh.load_state_dict(state, strict=True)
    assert all(torch.equal(state[key], value) for key, value in fresh.state_dict().items())
    head_keys = {key for key in strategy.state_dict() if not key.startswith("encoder.")}
    assert not head_keys & set(state)


def test_masking_never_leaks(corpus: list[Data]) -> None:
    strategy = AttributeMasking(MoleculeEncoder(**ENCODER_ARGS), AttributeMaskingSettings(mask_edge=True))
    rng = np.random.default_rng(1)
    for graph in corpus:
        original_x, original_edge_attr = graph.x.clone(), graph.edge_attr.clone()
        prepared = strategy.prepare(graph, rng)
        masked = prepared.masked_atoms
        assert int(masked.sum()) == int(graph.num_nodes * 0.15) + 1
        assert torch.equal(prepared.x[masked], torch.tensor([[MASK_ATOM_TYPE, 0]]).expand(int(masked.sum()), 2))
        assert torch.equal(prepared.masked_atom_types, original_x[masked, 0])
        assert torch.equal(prepared.x[~masked], original_x[~masked])

        source, target = graph.edge_index
        assert torch.equal(prepared.masked_bonds, masked[source] | masked[target])
        bonds = prepared.masked_bonds
        assert torch.equal(prepared.edge_attr[bonds], torch.tensor([[MASK_BOND_TYPE, 0]]).expand(int(bonds.sum()), 2))
        assert torch.equal(prepared.masked_bond_types, original_edge_attr[bonds, 0])
        assert torch.equal(prepared.edge_attr[~bonds], original_edge_attr[~bonds])

        assert torch.equal(graph.x, original_x) and torch.equal(graph.edge_attr, original_edge_attr)


def test_masking_batches_targets_in_node_order(corpus: list[Data]) -> None:
    strategy = AttributeMasking(MoleculeEncoder(**ENCODER_ARGS))
    rng = np.random.default_rng(2)
    batch = Batch.from_data_list([strategy.prepare(graph, rng) for graph in corpus[:4]])
    original = Batch.from_data_list(corpus[:4])
    assert torch.equal(batch.masked_atom_types, original.x[batch.masked_atoms, 0])


# Hand-checked sets, with the paper's k = 5 layers: substructure d <= 5, context 4 < d <= 7.
# Decane is the chain 0-1-...-9; in hexylbenzene the ring is atoms 0-5 and the chain 6-11 hangs
# off atom 5, so atom 6 is 2 hops from atom 0 and atom 11 is 7 hops away.
@pytest.mark.parametrize(
    ("smiles", "center", "substructure", "context", "anchors"),
    [
        ("CCCCCCCCCC", 0, range(6), [5, 6, 7], [5]),
        ("CCCCCCCCCC", 2, range(8), [7, 8, 9], [7]),
        ("c1ccccc1CCCCCC", 0, range(10), [9, 10, 11], [9]),
        ("CCCCCCCCCC.Cl", 0, range(6), [5, 6, 7], [5]),
        ("c1ccccc1", 0, range(6), [], []),
    ],
)
def test_substructure_context_split(smiles: str, center: int, substructure, context, anchors) -> None:
    graph = _graph(smiles)
    split = split_substructure_context(hop_distances(graph.edge_index, graph.num_nodes, center), 5, 4, 7)
    assert split.substructure.tolist() == list(substructure)
    assert split.context.tolist() == list(context)
    assert split.anchors.tolist() == list(anchors)


def test_hop_distances_marks_other_fragments_unreachable() -> None:
    graph = _graph("CCC.Cl")
    assert hop_distances(graph.edge_index, graph.num_nodes, 0).tolist() == [0, 1, 2, -1]


def _prepare_at(strategy: ContextPrediction, smiles: str, center: int) -> Data:
    return strategy.prepare(_graph(smiles), SimpleNamespace(integers=lambda _: center))


def test_context_prediction_prepares_and_batches_hand_checked_pairs() -> None:
    strategy = ContextPrediction(MoleculeEncoder(num_layers=5, emb_dim=16))
    decane = _graph("CCCCCCCCCC")
    first = _prepare_at(strategy, "CCCCCCCCCC", 0)
    skipped = _prepare_at(strategy, "c1ccccc1", 0)
    second = _prepare_at(strategy, "CCCCCCCCCC", 2)

    assert torch.equal(second.x_substructure, decane.x[:8])
    assert second.substructure_center.tolist() == [2]
    assert second.edge_index_substructure.size(1) == 2 * 7
    assert torch.equal(second.x_context, decane.x[7:])
    assert second.edge_index_context.size(1) == 2 * 2
    assert second.context_anchors.tolist() == [0]
    assert second.num_context_anchors.tolist() == [1]
    assert skipped.x_substructure.size(0) == skipped.x_context.size(0) == 0
    assert skipped.substructure_center.numel() == skipped.num_context_anchors.item() == 0

    batch = Batch.from_data_list([first, skipped, second])
    assert batch.substructure_center.tolist() == [0, 6 + 2]
    assert batch.context_anchors.tolist() == [0, 3 + 0]
    assert batch.num_context_anchors.tolist() == [1, 0, 1]
    assert batch.edge_index_substructure.max().item() == 6 + 8 - 1
    assert batch.edge_index_context.max().item() == 3 + 3 - 1


def test_batch_without_signal_gives_zero_loss_that_reaches_every_parameter() -> None:
    strategy = ContextPrediction(MoleculeEncoder(**ENCODER_ARGS))
    rng = np.random.default_rng(0)
    batch = Batch.from_data_list([strategy.prepare(_graph(smiles), rng) for smiles in ("CCO", "c1ccccc1")])
    loss, metrics = strategy.loss(batch)
    loss.backward()
    assert loss.item() == 0.0 and metrics["positives"] == 0.0
    assert all(p.grad is not None and not p.grad.any() for p in strategy.parameters())


def test_edge_prediction_negatives_are_never_bonds(corpus: list[Data]) -> None:
    strategy = EdgePrediction(MoleculeEncoder(**ENCODER_ARGS))
    rng = np.random.default_rng(3)
    for graph in corpus + [_graph("CCC")]:
        negatives = strategy.prepare(graph, rng).negative_edge_index
        pairs = [tuple(pair) for pair in negatives.t().tolist()]
        available = graph.num_nodes * (graph.num_nodes - 1) // 2 - graph.edge_index.size(1) // 2
        assert len(pairs) == min(graph.edge_index.size(1) // 2, available)
        assert len(set(pairs)) == len(pairs)
        assert all(i != j for i, j in pairs)
        assert not set(pairs) & _bonds(graph)
        assert not {(j, i) for i, j in pairs} & _bonds(graph)


@pytest.mark.parametrize("num_graphs", [2, 3, 7])
def test_negatives_come_from_other_graphs(num_graphs: int) -> None:
    other = other_graph_index(num_graphs)
    assert sorted(other.tolist()) == list(range(num_graphs))
    assert not (other == torch.arange(num_graphs)).any()


def test_infomax_needs_two_graphs_for_negatives(corpus: list[Data]) -> None:
    strategy = Infomax(MoleculeEncoder(**ENCODER_ARGS))
    loss, metrics = strategy.loss(Batch.from_data_list([strategy.prepare(corpus[0], np.random.default_rng(0))]))
    assert loss.item() == 0.0 and metrics["positives"] == 0.0
    with pytest.raises(ValueError, match="at least 2 graphs"):
        other_graph_index(1)


def test_supervised_loss_ignores_missing_labels(corpus: list[Data]) -> None:
    strategy = SupervisedPretraining(MoleculeEncoder(**ENCODER_ARGS), SupervisedSettings(num_tasks=2))
    rng = np.random.default_rng(0)
    batch = Batch.from_data_list([strategy.prepare(graph, rng) for graph in corpus[:8]])
    loss, metrics = strategy.loss(batch)
    assert metrics["labelled"] == 8.0
    logits = strategy.task_head(strategy.encoder(batch.x, batch.edge_index, batch.edge_attr, batch.batch, 8))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], batch.y[:, 0])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="num_tasks=3"):
        SupervisedPretraining(MoleculeEncoder(**ENCODER_ARGS), SupervisedSettings(num_tasks=3)).prepare(corpus[0], rng)


def test_registry() -> None:
    assert set(STRATEGIES) == {"attribute_masking", "context_prediction", "edge_prediction", "infomax", "supervised"}
    for name, strategy_type in STRATEGIES.items():
        strategy = make_strategy(name, MoleculeEncoder(**ENCODER_ARGS), SETTINGS[name])
        assert type(strategy) is strategy_type and strategy.name == name

    encoder = MoleculeEncoder(**ENCODER_ARGS)
    assert make_strategy("attribute_masking", encoder, {"mask_rate": 0.3}).settings.mask_rate == 0.3
    from_config = load_config(None, ["mask_rate=0.25", "mask_edge=true"], schema=AttributeMaskingSettings)
    assert make_strategy("attribute_masking", encoder, from_config).bond_head is not None
    with pytest.raises(ValueError, match="unknown pretraining strategy"):
        make_strategy("autoencoder", encoder)
    with pytest.raises(ValueError, match="unknown settings"):
        make_strategy("attribute_masking", encoder, {"mask_ratio": 0.3})
    with pytest.raises(TypeError, match="AttributeMaskingSettings"):
        make_strategy("attribute_masking", encoder, SupervisedSettings(num_tasks=1))
    with pytest.raises(ValueError, match="num_tasks"):
        make_strategy("supervised", encoder)


def test_infomax_score_is_the_bilinear_discriminator() -> None:
    from gsrl.models.encoder import MoleculeEncoder
    from gsrl.pretraining.infomax import Infomax

    strategy = Infomax(MoleculeEncoder("gin", num_layers=2, emb_dim=16))
    summaries, nodes = torch.randn(7, 16), torch.randn(7, 16)
    torch.testing.assert_close(strategy.score(summaries, nodes), strategy.discriminator(summaries, nodes).squeeze(1))
