"""Fine-tuning benchmark: property datasets, scaffold split, loss/metric, one run, table, Ray grid."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gsrl.config import ConfigError, RayResources, RunPlace, config_from_dict, load_config
from gsrl.data.property_datasets import PROPERTY_DATASETS, PropertyDataset, load_property_dataset
from gsrl.data.scaffold import ScaffoldSplit, murcko_scaffold, scaffold_split
from gsrl.finetune.benchmark import column_order, data_digest, format_markdown, run_directory, summarize
from gsrl.finetune.config import EncoderSpec, FinetuneConfig
from gsrl.jobs.finetune import run_benchmark
from gsrl.finetune.train import (
    EpochMetrics,
    FinetuneResult,
    best_epoch,
    build_predictor,
    finetune,
    masked_bce,
    mean_roc_auc,
    task_roc_aucs,
)

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "finetune"
TINY_SETTINGS = {"num_layers": 2, "emb_dim": 16, "epochs": 2, "eval_batch_size": 512}
TINY = {**TINY_SETTINGS, "run": RunPlace(device="cpu", threads=1)}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The runs are tiny; a second intra-op thread only adds contention on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bbbp(data_root: Path, cache_dir: Path) -> PropertyDataset:
    return load_property_dataset("bbbp", data_root, cache_dir)


@pytest.fixture(scope="module")
def bbbp_split(bbbp: PropertyDataset) -> ScaffoldSplit:
    return scaffold_split(bbbp.smiles)


def _csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)


# --------------------------------------------------------------------------- scaffold split


def test_murcko_scaffold_hand_checked() -> None:
    assert murcko_scaffold("Oc1ccccc1") == murcko_scaffold("Cc1ccccc1") == "c1ccccc1"
    assert murcko_scaffold("CCO") == ""  # every acyclic molecule shares the empty scaffold
    # The ring stereocentre survives side-chain removal, so chirality separates enantiomeric scaffolds.
    chiral = "c1ccc([C@@H]2CCCN2)cc1"
    assert murcko_scaffold("Cc1ccc([C@@H]2CCCN2)cc1") == murcko_scaffold("CCN1CCC[C@H]1c1ccccc1") == chiral
    assert murcko_scaffold("Oc1ccc([C@H]2CCCN2)cc1") != chiral
    assert murcko_scaffold("Oc1ccc([C@H]2CCCN2)cc1", include_chirality=False) == "c1ccc(C2CCCN2)cc1"
    with pytest.raises(ValueError, match="cannot parse"):
        murcko_scaffold("not a smiles")


def test_scaffold_split_hand_checked() -> None:
    smiles = [
        "Oc1ccccc1", "OC1CCCCC1", "Cc1ccccc1", "CCO", "Nc1ccccc1",  # 0-4
        "NC1CCCCC1", "Clc1ccccc1", "Cc1ccncc1", "CC1CCCCC1", "Fc1ccccc1",  # 5-9
    ]
    split = scaffold_split(smiles)
    # Benzene (5) then cyclohexane (3) fill train to exactly 80%; of the two singletons the one with
    # the larger first index (pyridine, 7) comes first and goes to valid, the acyclic one to test.
    assert split.train.tolist() == [0, 2, 4, 6, 9, 1, 5, 8]
    assert split.valid.tolist() == [7]
    assert split.test.tolist() == [3]
    assert split.train.dtype == np.int64
    with pytest.raises(ValueError, match="sum to 1"):
        scaffold_split(smiles, 0.8, 0.1, 0.2)


def test_scaffold_split_real_bbbp(bbbp: PropertyDataset, bbbp_split: ScaffoldSplit) -> None:
    parts = [bbbp_split.train, bbbp_split.valid, bbbp_split.test]
    assert [len(p) for p in parts] == [1631, 204, 204]  # the split sizes reported for Hu et al.'s BBBP
    everything = np.concatenate(parts)
    assert sorted(everything.tolist()) == list(range(bbbp.num_molecules))  # disjoint and complete
    again = scaffold_split(bbbp.smiles)
    assert all(np.array_equal(a, b) for a, b in zip(parts, [again.train, again.valid, again.test]))
    scaffolds = [{murcko_scaffold(bbbp.smiles[i]) for i in p} for p in parts]
    assert not (scaffolds[0] & scaffolds[1] or scaffolds[0] & scaffolds[2] or scaffolds[1] & scaffolds[2])


# --------------------------------------------------------------------------- datasets


def test_property_dataset_names() -> None:
    assert PROPERTY_DATASETS == ("bbbp", "tox21", "toxcast", "sider", "clintox", "muv", "hiv", "bace")


def test_bbbp_single_task(bbbp: PropertyDataset) -> None:
    report = bbbp.parse_report
    assert (report.rows, report.parsed, report.failed) == (2039, 2039, 0)
    assert bbbp.task_names == ["p_np"]
    assert bbbp.labels.shape == (2039, 1) and bbbp.labels.dtype == torch.float32
    assert (int((bbbp.labels == 1).sum()), int((bbbp.labels == 0).sum())) == (1560, 479)


def test_clintox_two_tasks(data_root: Path, cache_dir: Path) -> None:
    clintox = load_property_dataset("clintox", data_root, cache_dir)
    assert clintox.task_names == ["FDA_APPROVED", "CT_TOX"]
    assert clintox.labels.shape == (1478, 2) and not torch.isnan(clintox.labels).any()
    assert (int((clintox.labels == 1).sum()), int((clintox.labels == 0).sum())) == (1496, 1460)


def test_tox21_missing_labels_are_nan(data_root: Path, cache_dir: Path) -> None:
    tox21 = load_property_dataset("tox21", data_root, cache_dir)
    with open(data_root / "moleculenet/tox21.csv", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    report = tox21.parse_report
    assert report.rows == len(rows) == 7831
    assert report.parsed + report.failed == 7831 and report.parsed == tox21.num_molecules
    assert tox21.task_names == header[1:] and tox21.num_tasks == 12
    expected = np.array(
        [[float(c) if c else np.nan for c in rows[r - 1][1:]] for r in tox21.source_rows], dtype=np.float32
    )
    np.testing.assert_array_equal(tox21.labels.numpy(), expected)  # NaN positions included
    assert int(torch.isnan(tox21.labels).sum()) == int(np.isnan(expected).sum()) > 0
    assert tox21.smiles == [rows[r - 1][0] for r in tox21.source_rows]


def test_label_conventions_and_invalid_smiles(tmp_path: Path) -> None:
    root, cache = tmp_path / "data", tmp_path / "cache"
    # -1/1 file: 0 means missing; columns found by name, extra columns ignored.
    _csv(root / "moleculenet/clintox.csv", [
        ["smiles", "note", "CT_TOX", "FDA_APPROVED"],
        ["CCO", "a", "-1", "1"],
        ["not_a_smiles", "b", "1", "1"],
        ["c1ccccc1", "c", "1", "0"],
    ])
    clintox = load_property_dataset("clintox", root, cache)
    np.testing.assert_array_equal(clintox.labels.numpy(), np.array([[1, 0], [np.nan, 1]], dtype=np.float32))
    assert (clintox.parse_report.rows, clintox.parse_report.failed) == (3, 1)
    assert clintox.parse_report.failed_examples == [(2, "not_a_smiles")]
    assert clintox.source_rows == [1, 3]
    # 0/1 file with an empty cell, and the SMILES column that BACE names `mol`.
    _csv(root / "moleculenet/bace.csv", [["mol", "Class"], ["CCO", "0"], ["CCN", ""], ["CCC", "1.0"]])
    bace = load_property_dataset("bace", root, cache)
    np.testing.assert_array_equal(bace.labels.numpy()[:, 0], np.array([0, np.nan, 1], dtype=np.float32))
    _csv(root / "moleculenet/bbbp.csv", [["smiles", "p_np"], ["CCO", "2"]])
    with pytest.raises(ValueError, match="label '2'"):
        load_property_dataset("bbbp", root, cache)
    _csv(root / "moleculenet/sider.csv", [["smiles", "a", "b"], ["CCO", "0", "1"]])
    with pytest.raises(ValueError, match="27 tasks"):
        load_property_dataset("sider", root, cache)
    with pytest.raises(ValueError, match="Unknown property dataset"):
        load_property_dataset("pcba", root, cache)


# --------------------------------------------------------------------------- loss and metric


def test_masked_bce_ignores_missing_labels() -> None:
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]], requires_grad=True)
    labels = torch.tensor([[1.0, math.nan], [0.0, 1.0]])
    loss = masked_bce(logits, labels)
    # BCE(0, 1) = log 2; BCE(1, 0) = BCE(-1, 1) = log(1 + e).
    assert loss.item() == pytest.approx((math.log(2) + 2 * math.log(1 + math.e)) / 3)
    loss.backward()
    assert logits.grad[0, 1] == 0
    empty = masked_bce(logits, torch.full((2, 2), math.nan))
    assert empty.item() == 0.0


def test_roc_auc_skips_one_class_tasks() -> None:
    nan = math.nan
    labels = np.array([[1, 1, nan], [0, 1, 1], [1, 1, 0], [0, nan, nan]])
    scores = np.array([[0.9, 0.0, 0.0], [0.1, 0.0, 0.2], [0.4, 0.0, 0.8], [0.6, 0.0, 0.0]])
    assert task_roc_aucs(labels, scores) == [0.75, None, 0.0]
    assert mean_roc_auc(labels, scores) == pytest.approx(0.375)
    assert mean_roc_auc(labels[:, 1:2], scores[:, 1:2]) is None


def test_best_epoch_is_earliest_maximum() -> None:
    assert best_epoch([0.5, 0.7, None, 0.7, 0.6]) == 1
    assert best_epoch([None, math.nan, 0.1]) == 2
    with pytest.raises(ValueError, match="undefined"):
        best_epoch([None, math.nan])


# --------------------------------------------------------------------------- one run


def test_finetune_tiny_bbbp(bbbp: PropertyDataset, bbbp_split: ScaffoldSplit) -> None:
    split = ScaffoldSplit(bbbp_split.train[:256], bbbp_split.valid, bbbp_split.test)
    config = FinetuneConfig(**TINY)
    encoder = EncoderSpec("gin", None, "gin")
    result = finetune(bbbp, split, encoder, seed=3, config=config)
    assert (result.dataset, result.encoder, result.seed, len(result.history)) == ("bbbp", "gin", 3, 2)
    for metrics in result.history:
        assert all(0.0 < v < 1.0 for v in (metrics.train_auc, metrics.valid_auc, metrics.test_auc))
        assert math.isfinite(metrics.train_loss) and metrics.seconds > 0
    valid = [m.valid_auc for m in result.history]
    assert result.best_epoch == 1 + int(np.argmax(valid))
    chosen = result.history[result.best_epoch - 1]
    assert (result.valid_auc, result.test_auc) == (chosen.valid_auc, chosen.test_auc)
    again = finetune(bbbp, split, encoder, seed=3, config=config)
    assert again.to_dict()["history"][-1]["test_auc"] == result.history[-1].test_auc
    json.dumps(result.to_dict())


def _numbers(result: FinetuneResult) -> list[tuple]:
    """Everything a run measured except wall time."""
    return [(m.epoch, m.train_loss, m.train_auc, m.valid_auc, m.test_auc) for m in result.history] + [
        (result.best_epoch, result.valid_auc, result.test_auc)]


def test_finetune_resumes_and_extends_exactly(bbbp: PropertyDataset, bbbp_split: ScaffoldSplit, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """A run continued from its epoch checkpoint, or extended to more epochs, equals an uninterrupted run."""
    split = ScaffoldSplit(bbbp_split.train[:256], bbbp_split.valid, bbbp_split.test)
    encoder = EncoderSpec("gin", None, "gin")
    config = {**TINY, "eval_train": False}
    uninterrupted = finetune(bbbp, split, encoder, seed=5, config=FinetuneConfig(**{**config, "epochs": 3}))
    two = finetune(bbbp, split, encoder, seed=5, config=FinetuneConfig(**{**config, "epochs": 2}))

    run_dir = tmp_path / "run"
    first = finetune(bbbp, split, encoder, 5, FinetuneConfig(**{**config, "epochs": 2}), run_dir=run_dir)
    assert _numbers(first) == _numbers(two)
    assert [path.name for path in (run_dir / "checkpoints").glob("*.pt")] == ["iter_000002.pt"]
    extended = finetune(bbbp, split, encoder, 5, FinetuneConfig(**{**config, "epochs": 3}), run_dir=run_dir)
    assert _numbers(extended) == _numbers(uninterrupted)
    (checkpoint,) = (run_dir / "checkpoints").glob("*.pt")  # the store keeps the newest epoch only
    assert checkpoint.name == "iter_000003.pt"
    assert json.loads((run_dir / "results.json").read_text())["best_epoch"] == extended.best_epoch
    assert (run_dir / "config.yaml").exists() and any((run_dir / "tensorboard").iterdir())

    shorter = finetune(bbbp, split, encoder, 5, FinetuneConfig(**{**config, "epochs": 2}), run_dir=run_dir)
    assert _numbers(shorter) == _numbers(two)  # read off the checkpoint's first two epochs, nothing trained

    checkpoint.write_bytes(b"truncated")
    with caplog.at_level("WARNING", logger="gsrl.checkpoint"):
        again = finetune(bbbp, split, encoder, 5, FinetuneConfig(**{**config, "epochs": 3}), run_dir=run_dir)
    assert "is corrupt" in caplog.text and checkpoint.name in caplog.text
    assert _numbers(again) == _numbers(uninterrupted)


def test_run_directory_identity(bbbp: PropertyDataset, tmp_path: Path) -> None:
    """Runs are told apart by what decides their numbers, and only by that."""
    molecules = data_digest(bbbp)
    plain = EncoderSpec("gin", None, "gin")
    base = FinetuneConfig(**TINY)

    def where(config=base, encoder=plain, seed=0, data=molecules):
        return run_directory(tmp_path, "bbbp", data, encoder, seed, config)

    assert where().parent == tmp_path / "runs" and where().name.startswith("bbbp-gin-seed0-")
    same = [FinetuneConfig(**{**TINY, "epochs": 50}),
            FinetuneConfig(**{**TINY, "run": RunPlace(device="cpu", threads=2), "ray": RayResources(worker_cpus=2)}),
            FinetuneConfig(**{**TINY, "run": RunPlace(output_dir="elsewhere", device="cpu", threads=1), "seeds": [0, 1],
                              "eval_batch_size": 7})]
    assert all(where(config) == where() for config in same)
    different = [where(FinetuneConfig(**{**TINY, "lr": 1e-4})), where(seed=1), where(data="0" * 64),
                 where(FinetuneConfig(**{**TINY, "dropout": 0.2}))]
    assert len({where(), *different}) == 1 + len(different)
    checkpoint = tmp_path / "encoder.pth"
    checkpoint.write_bytes(b"weights v1")
    first = where(encoder=EncoderSpec("gin", str(checkpoint), "gin"))
    checkpoint.write_bytes(b"weights v2")
    assert where(encoder=EncoderSpec("gin", str(checkpoint), "gin")) != first


def test_pretrained_encoder_is_loaded(data_root: Path) -> None:
    path = data_root / "pretrained/gcn_contextpred.pth"
    model = build_predictor(2, EncoderSpec("gcn_cp", str(path), "gcn"), FinetuneConfig())
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(model.encoder.gnns[0].linear.weight, state["gnns.0.linear.weight"])
    assert model.head.out_features == 2 and model.encoder.dropout == 0.5


# --------------------------------------------------------------------------- table


def _result(dataset: str, encoder: str, seed: int, test_auc: float | None) -> FinetuneResult:
    history = [EpochMetrics(1, 0.5, None, 0.6, test_auc, 1.0)]
    return FinetuneResult(dataset, encoder, seed, 1, 0.6, test_auc, history)


def test_summary_table_math() -> None:
    encoders = [EncoderSpec("gcn_cp", "cp.pth", "gcn"), EncoderSpec("gin", None, "gin"),
                EncoderSpec("gcn", None, "gcn")]
    assert column_order(encoders) == ["gcn", "gcn_cp", "gin"]  # baseline right before its pretrained encoder
    results = [
        _result("bbbp", "gcn", 0, 0.6), _result("bbbp", "gcn", 1, 0.7),
        _result("bbbp", "gcn_cp", 0, 0.7), _result("bbbp", "gcn_cp", 1, 0.8),
        _result("bbbp", "gin", 0, 0.5), _result("bbbp", "gin", 1, None),  # undefined test AUC: left out
        _result("tox21", "gcn", 0, 0.7), _result("tox21", "gcn", 1, 0.7),
        _result("tox21", "gcn_cp", 0, 0.8), _result("tox21", "gcn_cp", 1, 0.9),
    ]
    summary = summarize(results, ["bbbp", "tox21"], encoders)
    cells = summary["cells"]
    assert cells["bbbp"]["gcn"]["mean"] == pytest.approx(0.65) and cells["bbbp"]["gcn"]["std"] == pytest.approx(0.05)
    assert cells["bbbp"]["gin"] == {"mean": 0.5, "std": 0.0, "seeds": 1, "values": [0.5]}
    assert cells["tox21"]["gin"]["mean"] is None
    assert summary["average"]["gcn"] == pytest.approx(0.675)
    assert summary["average"]["gcn_cp"] == pytest.approx(0.8)
    assert summary["average"]["gin"] is None  # no tox21 result
    assert summary["gain"] == {"gcn": None, "gcn_cp": pytest.approx(0.125), "gin": None}
    assert summary["baseline_of"] == {"gcn": None, "gcn_cp": "gcn", "gin": None}
    table = format_markdown(summary, encoders, "t")
    assert "| Dataset | gcn | gcn_cp | gin |" in table
    assert "| BBBP | 65.0 ± 5.0 | 75.0 ± 5.0 | 50.0 ± 0.0 |" in table
    assert "| Tox21 | 70.0 ± 0.0 | 85.0 ± 5.0 | — |" in table
    assert "| Average | 67.5 | 80.0 (+12.5) | — |" in table
    json.dumps(summary)


# --------------------------------------------------------------------------- config


def test_shipped_configs_load() -> None:
    full = load_config(CONFIGS / "hu2020.yaml", schema=FinetuneConfig)
    assert full.datasets == list(PROPERTY_DATASETS) and full.seeds == list(range(10))
    assert (full.epochs, full.batch_size, full.lr, full.decay, full.dropout) == (100, 32, 1e-3, 0.0, 0.5)
    specs = full.encoder_specs()
    assert specs[0] == EncoderSpec("gin", None, "gin")
    assert [s.name for s in specs if s.pretrained] == [
        "gcn_supervised_contextpred", "graphsage_supervised_contextpred", "gat_supervised_contextpred"
    ]
    smoke = load_config(CONFIGS / "smoke.yaml", schema=FinetuneConfig)
    assert len(smoke.datasets) == 2 and smoke.seeds == [0] and smoke.epochs == 2


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(None, ["epoch=3"], schema=FinetuneConfig)
    with pytest.raises(ConfigError, match=r"key 'datasets' takes datasets from one of .*, got \['pcba'\]"):
        load_config(None, ["datasets=[bbbp, pcba]"], schema=FinetuneConfig)
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config(None, ["encoders=[{name: a, checkpoint: x.pth}]"], schema=FinetuneConfig)
    with pytest.raises(ConfigError, match="unique"):
        load_config(None, ["encoders=[{name: a}, {name: a, path: x.pth}]"], schema=FinetuneConfig)
    spec = load_config(None, ["encoders=[{name: cp, path: '{data_root}/p.pth', conv: gat}]"],
                       schema=FinetuneConfig).encoder_specs()[0]
    (tmp_path / "p.pth").touch()
    assert spec.checkpoint(tmp_path) == tmp_path / "p.pth" and spec.conv == "gat"
    with pytest.raises(FileNotFoundError, match=r"'cp'.*\{data_root\}/p.pth"):
        spec.checkpoint(tmp_path / "elsewhere")


# --------------------------------------------------------------------------- Ray grid


def test_gsrl_finetune_runs_the_grid_on_ray(tmp_path: Path, data_root: Path, cache_dir: Path) -> None:
    """`gsrl finetune` end to end: Ray tasks, results.json, runs.jsonl and the printed table."""
    ray = pytest.importorskip("ray")
    from click.testing import CliRunner

    from gsrl.cli import main

    settings = {**TINY_SETTINGS, "epochs": 1, "eval_train": False, "datasets": ["bbbp"], "seeds": [0],
                "data": {"root": str(data_root), "cache_dir": str(cache_dir)},
                "run": {"output_dir": str(tmp_path), "device": "cpu", "threads": 1}}
    config = config_from_dict({**settings, "encoders": [{"name": "gin", "path": None}]}, schema=FinetuneConfig)
    with pytest.raises(RuntimeError, match="ray.init"):
        run_benchmark(config)
    overrides = [item for key, value in settings.items() for item in ("-o", f"{key}={json.dumps(value)}")]
    smoke = Path(__file__).resolve().parent.parent / "configs" / "finetune" / "smoke.yaml"
    try:
        result = CliRunner().invoke(main, ["finetune", "-c", str(smoke), *overrides])
        assert result.exit_code == 0, result.output + repr(result.exception)
        first = json.loads((tmp_path / "results.json").read_text())["runs"][0]["history"]
        longer = CliRunner().invoke(main, ["finetune", "-c", str(smoke), *overrides, "-o", "epochs=2"])
        assert longer.exit_code == 0, longer.output + repr(longer.exception)
        missing = config_from_dict({**settings, "encoders": [{"name": "cp", "path": str(tmp_path / "none.pth")}]},
                                   schema=FinetuneConfig)
        with pytest.raises(FileNotFoundError, match="cp"):
            run_benchmark(missing)
    finally:
        ray.shutdown()
    assert "| BBBP |" in result.output
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["runs"]) == 1 and saved["runs"][0]["history"][0]["train_auc"] is None
    (run_dir,) = (tmp_path / "runs").iterdir()  # the 2-epoch grid continued the 1-epoch grid's run
    assert run_dir.name.startswith("bbbp-gin-seed0-") and (run_dir / "checkpoints" / "iter_000002.pt").exists()
    extended = saved["runs"][0]["history"]
    assert len(extended) == 2 and extended[0] == first[0]
    assert saved["datasets"]["bbbp"]["split"] == {"train": 1631, "valid": 204, "test": 204}
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 1
