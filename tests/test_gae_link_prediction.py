"""GAE/VGAE link prediction: offline graphs, leak-free edge splits, the loss terms, jobs, resume and the sweep."""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import shutil
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from gsrl.checkpoint import RunDirectoryExists
from gsrl.config import ConfigError, RayResources, RunPlace, config_from_dict, load_config
from gsrl.gae.link.config import LinkPredictionConfig, LinkSweepConfig
from gsrl.gae.link.datasets import GRAPH_DATASETS, GraphSource, graph_source, load_graph
from gsrl.gae.link.models import build_autoencoder
from gsrl.gae.link.split import split_links
from gsrl.gae.link.train import dense_reconstruction_loss, train_link_predictor

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "gae"


@pytest.fixture(scope="module")
def cora(data_root: Path, cache_dir: Path) -> Data:
    return load_graph("cora", data_root, cache_dir)


def pairs(edges: torch.Tensor) -> set[tuple[int, int]]:
    """Undirected pairs (smaller id first)."""
    return {(min(a, b), max(a, b)) for a, b in edges.t().tolist()}


@pytest.mark.parametrize(("name", "nodes", "edges", "features"), [
    ("cora", 2708, 10556, 1433), ("citeseer", 3327, 9104, 3703),
    ("amazon-photo", 7650, 238162, 745), ("amazon-computers", 13752, 491722, 767),
])
def test_graphs_load_offline_undirected_without_self_loops(name, nodes, edges, features, data_root, cache_dir):
    data = load_graph(name, data_root, cache_dir)
    assert (data.num_nodes, data.edge_index.size(1), data.num_features) == (nodes, edges, features)
    assert data.is_undirected() and not data.has_self_loops()
    row_sums = data.x.sum(dim=1)
    if name.startswith("amazon"):  # row-normalised bag of words
        assert torch.allclose(row_sums[row_sums > 0], torch.ones(1))
    else:  # Planetoid's binary features, as Kipf & Welling used them
        assert set(data.x.unique().tolist()) <= {0.0, 1.0} and row_sums.max() > 1


def test_unknown_or_missing_graph_is_named(tmp_path: Path, cache_dir: Path) -> None:
    known = "known: cora, citeseer, amazon-photo, amazon-computers"
    with pytest.raises(ValueError, match=f"unknown graph dataset 'pubmed'; {known}"):
        load_graph("pubmed", tmp_path, cache_dir)
    assert graph_source("cora") is GRAPH_DATASETS["cora"] and GRAPH_DATASETS["cora"].pyg_name == "Cora"
    with pytest.raises(FileNotFoundError, match="ind.cora.x"):
        load_graph("cora", tmp_path, cache_dir)


def _graph_fingerprint(arguments: tuple[Path, Path]) -> tuple[int, int, float]:
    data = load_graph("cora", *arguments)
    return data.num_nodes, data.edge_index.size(1), float(data.x.sum())


def test_concurrent_first_loads_build_one_complete_cache_entry(data_root: Path, tmp_path: Path) -> None:
    """A sweep's tasks all load the graph at once into an empty cache; none may read a half-written file."""
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        fingerprints = pool.map(_graph_fingerprint, [(data_root, tmp_path)] * 3)
    assert fingerprints == [(2708, 10556, fingerprints[0][2])] * 3
    assert [entry.name.split("-")[0] for entry in (tmp_path / "graphs").iterdir()] == ["cora"]


def test_no_reader_ever_sees_a_cache_entry_before_pyg_has_processed_it(data_root: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    read = GraphSource.read

    def read_checking_visible_entries(source: GraphSource, root: Path) -> Data:
        visible = [entry for entry in (tmp_path / "graphs").iterdir() if not entry.name.startswith(".")]
        assert all(any((entry / source.pyg_name / "processed").glob("data*.pt")) for entry in visible), visible
        return read(source, root)

    monkeypatch.setattr(GraphSource, "read", read_checking_visible_entries)
    assert load_graph("cora", data_root, tmp_path).num_nodes == 2708


def test_a_cache_entry_built_meanwhile_by_another_process_is_kept(data_root: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    reference = load_graph("cora", data_root, tmp_path / "reference")
    (entry,) = (tmp_path / "reference" / "graphs").iterdir()
    read = GraphSource.read

    def another_process_finishes_first(source: GraphSource, root: Path) -> Data:
        if Path(root).name.startswith("."):  # our private folder: the rival's entry lands before our rename
            target = tmp_path / "shared" / "graphs" / entry.name
            if not target.exists():
                shutil.copytree(entry, target)
        return read(source, root)

    monkeypatch.setattr(GraphSource, "read", another_process_finishes_first)
    data = load_graph("cora", data_root, tmp_path / "shared")
    assert torch.equal(data.edge_index, reference.edge_index) and torch.equal(data.x, reference.x)
    assert [path.name for path in (tmp_path / "shared" / "graphs").iterdir()] == [entry.name]


def test_split_partitions_the_edges_85_5_10_and_depends_only_on_the_seed(cora: Data) -> None:
    split = split_links(cora, seed=0)
    train, val, test = pairs(split.train_pos), pairs(split.val_pos), pairs(split.test_pos)
    assert not (train & val or train & test or val & test)
    assert train | val | test == pairs(cora.edge_index)
    total = len(pairs(cora.edge_index))
    assert (len(val), len(test)) == (int(0.05 * total), int(0.10 * total))
    assert pairs(split.message_edges) == train and split.message_edges.size(1) == 2 * len(train)
    again, other = split_links(cora, seed=0), split_links(cora, seed=1)
    assert torch.equal(again.test_pos, split.test_pos) and torch.equal(again.val_neg, split.val_neg)
    assert not torch.equal(other.test_pos, split.test_pos)


def test_negatives_never_collide_with_any_positive_or_each_other(cora: Data) -> None:
    split = split_links(cora, seed=3)
    positives = pairs(cora.edge_index)
    val_neg, test_neg = pairs(split.val_neg), pairs(split.test_neg)
    generator = torch.Generator().manual_seed(0)
    draws = [split.train_negatives(generator) for _ in range(20)]
    assert all(len(pairs(draw)) == split.train_pos.size(1) for draw in draws)
    train_neg = pairs(torch.cat(draws, dim=1))
    for negatives in (val_neg, test_neg, train_neg):
        assert not negatives & positives
        assert all(a != b for a, b in negatives)
    assert not val_neg & test_neg
    assert len(val_neg) == split.val_pos.size(1) and len(test_neg) == split.test_pos.size(1)


def test_dense_loss_matches_hand_computation_on_a_triangle_plus_one() -> None:
    z = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, -1.0]])
    adjacency = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    positives, negatives = 5.0, 4.0
    total = 0.0
    for i in range(3):
        for j in range(3):
            p = 1 / (1 + math.exp(-float(z[i] @ z[j])))
            total += -(negatives / positives) * math.log(p) if adjacency[i, j] else -math.log(1 - p)
    expected = 9 / (2 * negatives) * total / 9
    assert dense_reconstruction_loss(z, adjacency).item() == pytest.approx(expected, rel=1e-6)


def test_vgae_kl_term_matches_the_gaussian_formula() -> None:
    model = build_autoencoder("vgae", "gcn", in_channels=3)
    mu = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    logstd = torch.tensor([[0.0, math.log(2.0)], [math.log(0.5), 0.0]])
    per_node = [sum(0.5 * (float(s) ** 2 + float(m) ** 2 - 1) - math.log(float(s))
                    for m, s in zip(mu[i], logstd[i].exp())) for i in range(2)]
    assert model.kl_loss(mu, logstd).item() == pytest.approx(sum(per_node) / 2, rel=1e-6)


@pytest.mark.parametrize("conv", ["gcn", "graphsage", "gat"])
def test_encoders_give_latents_of_the_configured_width(conv: str) -> None:
    model = build_autoencoder("vgae", conv, in_channels=5, hidden_channels=8, latent_channels=4, heads=2)
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    model.train()
    assert model.encode(torch.randn(3, 5), edge_index).shape == (3, 4)


def job(tmp_path: Path, data_root: Path, cache_dir: Path, **settings) -> LinkPredictionConfig:
    values = {"dataset": "cora", "epochs": 30, "data": {"root": str(data_root), "cache_dir": str(cache_dir)},
              "run": {"device": "cpu", "output_dir": str(tmp_path), "threads": 1}, **settings}
    return config_from_dict(values, "test job", schema=LinkPredictionConfig)


@pytest.mark.parametrize(("model", "loss"), [("gae", "dense"), ("vgae", "sampled")])
def test_a_short_job_learns_to_rank_held_out_links(tmp_path, data_root, cache_dir, model, loss) -> None:
    config = job(tmp_path, data_root, cache_dir, model=model, loss=loss)
    result = train_link_predictor(config, tmp_path / "run")
    assert result.test_auc > 0.8 and result.test_ap > 0.8, result
    assert 1 <= result.best_epoch <= 30 and result.epochs == 30
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["test_auc"] == result.test_auc and "git_commit" in saved
    assert list((tmp_path / "run" / "tensorboard").iterdir())
    with pytest.raises(RunDirectoryExists):
        train_link_predictor(config, tmp_path / "run")
    assert train_link_predictor(config, tmp_path / "run", resume=True) == result
    (tmp_path / "run" / "results.json").rename(tmp_path / "run" / "result.json")  # the name earlier versions wrote
    assert train_link_predictor(config, tmp_path / "run", resume=True) == result


def test_resumed_job_ends_exactly_as_an_uninterrupted_one(tmp_path, data_root, cache_dir) -> None:
    settings = {"model": "vgae", "loss": "sampled", "checkpoint_every": 3}
    straight = train_link_predictor(job(tmp_path, data_root, cache_dir, epochs=6, **settings), tmp_path / "a")
    train_link_predictor(job(tmp_path, data_root, cache_dir, epochs=3, **settings), tmp_path / "b")
    (tmp_path / "b" / "results.json").unlink()  # as if the process had died after the epoch-3 checkpoint
    resumed = train_link_predictor(job(tmp_path, data_root, cache_dir, epochs=6, **settings), tmp_path / "b",
                                   resume=True)
    assert (resumed.test_auc, resumed.val_auc, resumed.best_epoch) == (straight.test_auc, straight.val_auc,
                                                                        straight.best_epoch)


def test_configs_reject_unknown_values_and_keys() -> None:
    with pytest.raises(ConfigError, match="key 'loss' takes one of dense, sampled, got 'full'"):
        load_config(None, ["loss=full"], schema=LinkPredictionConfig)
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(None, ["job.epoch=3"], schema=LinkSweepConfig)
    with pytest.raises(ConfigError, match="models\\[0\\]"):
        load_config(None, ["models=[{model: gae}]"], schema=LinkSweepConfig)
    with pytest.raises(ConfigError, match="unknown datasets \\['cora2'\\]"):
        load_config(None, ["dataset_overrides={cora2: {loss: sampled}}"], schema=LinkSweepConfig)
    from gsrl.gae.link.sweep import cell_configs

    bad = load_config(None, ["datasets=[cora]", "dataset_overrides={cora: {lossy: 1}}"], schema=LinkSweepConfig)
    with pytest.raises(ConfigError, match="lossy"):
        cell_configs(bad)


def test_shipped_sweep_is_the_kipf_welling_grid() -> None:
    from gsrl.gae.link.sweep import cell_configs

    sweep = load_config(CONFIGS / "sweep.yaml", schema=LinkSweepConfig)
    cells = cell_configs(sweep)
    assert len(cells) == 4 * 4 * 10
    cora = cells[("cora", "vgae-gcn", 7)]
    assert (cora.model, cora.conv, cora.seed, cora.loss, cora.epochs, cora.lr) == ("vgae", "gcn", 7, "dense", 200, 0.01)
    assert (cora.hidden_channels, cora.latent_channels, cora.val_fraction, cora.test_fraction) == (32, 16, 0.05, 0.1)
    assert cells[("amazon-computers", "gae-graphsage", 0)].loss == "sampled"


def test_sweep_run_directory_follows_the_settings(tmp_path) -> None:
    """A re-run finds a job's directory only when nothing that decides its numbers changed."""
    from gsrl.gae.link.sweep import run_directory

    job = LinkPredictionConfig(name="cora-gae-gcn-seed0")
    where = run_directory(tmp_path, job)
    assert where.parent == tmp_path / "runs" and where.name.startswith("cora-gae-gcn-seed0-")
    moved = dataclasses.replace(job, run=RunPlace(output_dir="elsewhere", threads=2), ray=RayResources(worker_cpus=2.0),
                                checkpoint_every=5)
    assert run_directory(tmp_path, moved) == where
    changed = [dataclasses.replace(job, lr=0.005), dataclasses.replace(job, epochs=100),
               dataclasses.replace(job, seed=1), dataclasses.replace(job, conv="gat")]
    assert len({where, *(run_directory(tmp_path, c) for c in changed)}) == 1 + len(changed)


def test_gsrl_gae_sweep_runs_the_grid_on_ray_and_resumes(tmp_path, data_root, cache_dir) -> None:
    ray = pytest.importorskip("ray")
    from click.testing import CliRunner

    from gsrl.cli import main

    overrides = ["datasets=[cora]", "models=[{model: gae, conv: gcn}, {model: vgae, conv: graphsage}]",
                 "seeds=[0, 1]", "job.epochs=3", "job.run.device=cpu", f"job.data.root={data_root}",
                 f"job.data.cache_dir={cache_dir}", f"run.output_dir={tmp_path}", "name=tiny"]
    arguments = ["gae", "sweep", "-c", str(CONFIGS / "sweep.yaml")] + [x for o in overrides for x in ("-o", o)]
    try:
        first = CliRunner().invoke(main, arguments)
        assert first.exit_code == 0, first.output + repr(first.exception)
        saved = json.loads((tmp_path / "tiny" / "results.json").read_text())
        again = CliRunner().invoke(main, arguments)  # every job is finished: read back, nothing submitted
        assert again.exit_code == 0, again.output + repr(again.exception)
    finally:
        ray.shutdown()
    assert "| cora |" in first.output and "paper 91.0 / 92.0" in first.output
    assert len(saved["runs"]) == 4 and not saved["failures"]
    assert {(r["model"], r["conv"], r["seed"]) for r in saved["runs"]} == {
        ("gae", "gcn", 0), ("gae", "gcn", 1), ("vgae", "graphsage", 0), ("vgae", "graphsage", 1)}
    rerun = json.loads((tmp_path / "tiny" / "results.json").read_text())
    assert rerun["runs"] == saved["runs"]
    assert (saved["jobs_run"], saved["jobs_read_back"], rerun["jobs_run"], rerun["jobs_read_back"]) == (4, 0, 0, 4)
    assert len((tmp_path / "tiny" / "runs.jsonl").read_text().splitlines()) == 4
    packed = (tmp_path / "tiny" / "runs.packed.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["results"]["seed"] for line in packed) == [0, 0, 1, 1]


def _sweep_payload(name: str, val_aucs: dict[int, float], dataset: str = "cora", split_size: int = 527) -> dict:
    """A results.json as a sweep writes it, with one vgae-gcn job per seed (test AUC = validation AUC − 0.01)."""
    runs = [{"dataset": dataset, "model": "vgae", "conv": "gcn", "seed": seed, "val_auc": auc, "val_ap": auc + 0.005,
             "test_auc": auc - 0.01, "test_ap": auc - 0.005, "split": {"test_pos": split_size}}
            for seed, auc in val_aucs.items()]
    return {"config": {"name": name}, "runs": runs}


def test_selection_takes_the_best_mean_validation_auc_and_reports_its_test_scores(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gsrl.cli import main

    files = []
    for name, aucs in (("narrow", {0: 0.90, 1: 0.93}), ("wide", {0: 0.92, 1: 0.92})):  # means 0.915, 0.92
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(_sweep_payload(name, aucs)))
    result = CliRunner().invoke(main, ["gae", "select", *map(str, files), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    cell = json.loads((tmp_path / "out" / "selection.json").read_text())["cells"]["cora"]["vgae-gcn"]
    assert cell["selected"] == "wide" and cell["published_auc_ap"] == [91.4, 92.6]
    assert cell["candidates"]["narrow"]["test_auc"]["mean"] == pytest.approx(0.905)
    assert cell["candidates"]["wide"]["test_ap"]["mean"] == pytest.approx(0.915)
    assert "| cora | vgae-gcn | **wide** | 92.0 ± 0.0 / 92.5 ± 0.0 | **91.0 ± 0.0 / 91.5 ± 0.0** | 91.4 / 92.6 |" \
        in (tmp_path / "out" / "selection.md").read_text()


def test_selection_refuses_sweeps_with_other_seeds_or_splits() -> None:
    from gsrl.gae.link.selection import IncomparableSweeps, select_on_validation

    reference = _sweep_payload("a", {0: 0.9, 1: 0.9})
    with pytest.raises(IncomparableSweeps, match="cora / vgae-gcn: sweep 'b'"):
        select_on_validation({"a": reference, "b": _sweep_payload("b", {0: 0.9, 2: 0.9})})
    with pytest.raises(IncomparableSweeps):
        select_on_validation({"a": reference, "b": _sweep_payload("b", {0: 0.9, 1: 0.9}, split_size=500)})
    ties = select_on_validation({"a": reference, "b": _sweep_payload("b", {0: 0.9, 1: 0.9})})
    assert ties["cells"]["cora"]["vgae-gcn"]["selected"] == "a"  # the first candidate on ties
