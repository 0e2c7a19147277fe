"""Few-shot dataset loading: real SIDER/Tox21 counts, task splits, caching, batching, reports."""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from gsrl.data import datasets, featurize, processed_cache, roots
from gsrl.data.datasets import (
    FEWSHOT_DATASETS,
    FEWSHOT_REGISTRY,
    FewShotDataset,
    FewShotEntry,
    load_fewshot_dataset,
    register_fewshot_dataset,
)
from gsrl.checkpoint import sha256_of
from gsrl.data.featurize import smiles_to_graph
from gsrl.data.features import FEATURIZER_VERSION
from gsrl.data.report import dataset_report, format_report
from gsrl.data.roots import DataFileMissing, resolve_data_root


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


@pytest.fixture(scope="module")
def sider(data_root: Path, cache_dir: Path) -> FewShotDataset:
    return load_fewshot_dataset("sider", data_root, cache_dir)


@pytest.fixture(scope="module")
def tox21(data_root: Path, cache_dir: Path) -> FewShotDataset:
    return load_fewshot_dataset("tox21", data_root, cache_dir)


# --------------------------------------------------------------------------- real data


def test_fewshot_dataset_names() -> None:
    assert len(FEWSHOT_DATASETS) == 13
    assert FEWSHOT_DATASETS[:4] == ("tox21", "sider", "muv", "pcba")
    assert sum(name.startswith("toxcast-") for name in FEWSHOT_DATASETS) == 9


def test_sider_shape_and_split(sider: FewShotDataset, data_root: Path) -> None:
    header, rows = _csv_rows(data_root / "moleculenet/sider.csv")
    assert (sider.num_molecules, sider.num_properties) == (1427, 27)
    assert sider.property_names == header[1:]
    assert "Injury, poisoning and procedural complications" in sider.property_names  # quoted comma
    assert sider.train_properties == list(range(21))
    assert sider.test_properties == list(range(21, 27))  # the last six columns
    assert sider.smiles == [row[0] for row in rows]
    assert sider.source_rows == list(range(1, 1428))
    assert len(sider.graphs) == 1427


def test_sider_labels(sider: FewShotDataset) -> None:
    assert sider.labels.dtype == torch.float32
    assert not torch.isnan(sider.labels).any()
    assert int((sider.labels == 1).sum()) == 21868
    assert int((sider.labels == 0).sum()) == 16661
    report = sider.parse_report
    assert (report.rows, report.parsed, report.failed, report.failed_examples) == (1427, 1427, 0, [])
    assert report.source_file.endswith("sider.csv")


def test_tox21_skips_unparsable_smiles(tox21: FewShotDataset, data_root: Path) -> None:
    report = tox21.parse_report
    assert (report.rows, report.parsed, report.failed) == (7831, 7823, 8)
    assert tox21.num_molecules == 7823
    _, rows = _csv_rows(data_root / "moleculenet/tox21.csv")
    failed_rows = [row for row, _ in report.failed_examples]
    assert len(failed_rows) == 8
    for row, smiles in report.failed_examples:
        assert smiles == rows[row - 1][0] and "[AlH3]" in smiles
    assert set(failed_rows).isdisjoint(tox21.source_rows)
    assert sorted(tox21.source_rows) == tox21.source_rows


def test_tox21_labels_follow_source_rows(tox21: FewShotDataset, data_root: Path) -> None:
    header, rows = _csv_rows(data_root / "moleculenet/tox21.csv")
    values = {"": math.nan, "0": 0.0, "1": 1.0}
    expected = torch.tensor([[values[c] for c in rows[r - 1][1:]] for r in tox21.source_rows])
    assert torch.equal(torch.isnan(tox21.labels), torch.isnan(expected))
    assert torch.equal(torch.nan_to_num(tox21.labels, -1), torch.nan_to_num(expected, -1))
    assert [tox21.smiles[i] for i in (0, -1)] == [rows[tox21.source_rows[i] - 1][0] for i in (0, -1)]
    assert [tox21.property_names[i] for i in tox21.test_properties] == ["SR-HSE", "SR-MMP", "SR-p53"]
    assert len(tox21.train_properties) == 9 and header[1:] == tox21.property_names


def test_graphs_match_featurizer(tox21: FewShotDataset) -> None:
    for i in (0, 1, 100, tox21.num_molecules - 1):
        expected = smiles_to_graph(tox21.smiles[i])
        got = tox21.graphs[i]
        for key in ("x", "edge_index", "edge_attr"):
            assert torch.equal(got[key], expected[key])
    assert getattr(tox21.graphs, "_data_list", None) is None  # nothing is kept per molecule returned


@pytest.mark.parametrize("name", ["sider", "tox21"])
def test_feature_indices_fit_embedding_tables(name: str, data_root: Path, cache_dir: Path) -> None:
    stored = load_fewshot_dataset(name, data_root, cache_dir).graphs.to_tensors()
    x, edge_attr = stored["x"], stored["edge_attr"]
    assert 0 <= int(x[:, 0].min()) and int(x[:, 0].max()) < 119  # row 119 is the mask token
    assert int(x[:, 1].max()) < 3
    assert int(edge_attr[:, 0].max()) < 4 and int(edge_attr[:, 1].max()) < 3


def test_class_members(tox21: FewShotDataset) -> None:
    inactive, active = tox21.class_members(9)
    column = tox21.labels[:, 9]
    assert inactive.dtype == active.dtype == np.int64
    assert np.all(np.diff(inactive) > 0) and np.all(np.diff(active) > 0)
    assert len(active) == int((column == 1).sum()) and len(inactive) == int((column == 0).sum())
    assert np.intersect1d(inactive, active).size == 0
    assert len(inactive) + len(active) + int(torch.isnan(column).sum()) == tox21.num_molecules
    assert tox21.class_members(9)[0] is inactive  # cached


@pytest.mark.parametrize("size", [36, 1500])
def test_collate_ids_equals_from_data_list(sider: FewShotDataset, size: int) -> None:
    ids = np.random.default_rng(size).integers(0, sider.num_molecules, size)  # repeats included
    fast = sider.graphs.collate_ids(ids)
    reference = Batch.from_data_list([sider.graphs[int(i)] for i in ids])
    for key in ("x", "edge_index", "edge_attr", "batch", "ptr"):
        assert torch.equal(fast[key], reference[key]), key
    assert fast.num_graphs == size
    assert torch.equal(fast.to_data_list()[5].x, sider.graphs[int(ids[5])].x)


def test_collate_ids_accepts_lists_and_rejects_bad_ids(sider: FewShotDataset) -> None:
    batch = sider.graphs.collate_ids([3, 0])
    assert batch.num_graphs == 2 and torch.equal(batch.x[: sider.graphs[3].num_nodes], sider.graphs[3].x)
    with pytest.raises(IndexError):
        sider.graphs.collate_ids([sider.num_molecules])
    with pytest.raises(IndexError):
        sider.graphs.collate_ids([-1])


def test_warm_load_does_no_rdkit_parsing(
    sider: FewShotDataset, data_root: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(smiles: str) -> None:
        raise AssertionError("a warm load must not parse SMILES")

    monkeypatch.setattr(featurize, "parse_smiles", fail)
    warm = load_fewshot_dataset("sider", data_root, cache_dir)
    assert warm.smiles == sider.smiles and warm.source_rows == sider.source_rows
    assert torch.equal(warm.labels, sider.labels)
    for key, tensor in sider.graphs.to_tensors().items():
        assert torch.equal(warm.graphs.to_tensors()[key], tensor), key
    assert warm.parse_report == sider.parse_report
    assert any(p.name.startswith(f"sider-{FEATURIZER_VERSION}-") for p in cache_dir.iterdir())


def test_pcba_missing_names_full_path(data_root: Path, cache_dir: Path) -> None:
    with pytest.raises(DataFileMissing, match="pcba.csv.gz") as info:
        load_fewshot_dataset("pcba", data_root, cache_dir)
    assert str(data_root / "moleculenet" / "pcba.csv.gz") in str(info.value)


def test_report(sider: FewShotDataset) -> None:
    report = dataset_report(sider)
    assert (report["name"], report["rows"], report["parsed"], report["failed"]) == ("sider", 1427, 1427, 0)
    props = report["properties"]
    assert len(props) == 27
    assert [p["split"] for p in props] == ["train"] * 21 + ["test"] * 6
    assert all(p["active"] + p["inactive"] + p["missing"] == 1427 for p in props)
    assert sum(p["active"] for p in props) == 21868
    text = format_report(report)
    assert "Nervous system disorders" in text and "1427" in text
    json.dumps(report)  # plain data


def test_report_lists_failed_rows(tox21: FewShotDataset) -> None:
    report = dataset_report(tox21)
    assert [e["row"] for e in report["failed_examples"]] == [r for r, _ in tox21.parse_report.failed_examples]
    assert "[AlH3]" in format_report(report)


# --------------------------------------------------------------------------- small synthetic data

TINY_CSV = (
    '"task, with comma",task_b,mol_id,mol_smiles\n'
    "1,0,m1,CCO\n"
    "0,,m2,c1ccccc1\n"
    ",1.0,m3,not_a_smiles\n"
    "0.0,1,m4,C[C@H](N)O\n"
    ",,m5,CC\n"
)

TINY_TASKS = {
    "datasets": {
        "tiny": {
            "file": "moleculenet/tiny.csv",
            "smiles_column": "mol_smiles",
            "label_columns": ["task_b", "task, with comma"],
            "gsmeta_split": {"train_tasks": ["task_b"], "test_tasks": ["task, with comma"]},
        },
        "tiny-sub": {  # no smiles_column: inherited from the "tiny" entry, as for toxcast-*
            "derive_from": "moleculenet/tiny.csv",
            "label_columns": ["task_b"],
            "gsmeta_split": {"train_tasks": ["task_b"], "test_tasks": []},
        },
    }
}


def _tiny_root(root: Path, csv_text: str = TINY_CSV, tasks: dict | None = TINY_TASKS) -> Path:
    (root / "moleculenet").mkdir(parents=True, exist_ok=True)
    (root / "moleculenet/tiny.csv").write_text(csv_text)
    if tasks is not None:
        (root / datasets.TASKS_FILE).write_text(json.dumps(tasks))
    return root


class ParseCounter:
    """Wraps the parser to count how many SMILES a load parses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = featurize.parse_smiles

        def counting(smiles: str):
            self.calls += 1
            return original(smiles)

        monkeypatch.setattr(featurize, "parse_smiles", counting)


def _nan_list(t: torch.Tensor) -> list:
    return [[None if math.isnan(v) else v for v in row] for row in t.tolist()]


def test_tiny_dataset_columns_by_name(tmp_path: Path) -> None:
    ds = load_fewshot_dataset("tiny", _tiny_root(tmp_path / "data"), tmp_path / "cache")
    assert ds.property_names == ["task_b", "task, with comma"]
    assert (ds.train_properties, ds.test_properties) == ([0], [1])
    assert ds.smiles == ["CCO", "c1ccccc1", "C[C@H](N)O", "CC"]
    assert ds.source_rows == [1, 2, 4, 5]
    assert _nan_list(ds.labels) == [[0.0, 1.0], [None, 0.0], [1.0, 0.0], [None, None]]
    report = ds.parse_report
    assert (report.rows, report.parsed, report.failed) == (5, 4, 1)
    assert report.failed_examples == [(3, "not_a_smiles")]


def test_tiny_invalid_smiles_logs_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="gsrl.data.smiles_graphs"):
        load_fewshot_dataset("tiny", _tiny_root(tmp_path / "data"), tmp_path / "cache")
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "1 of 5" in warnings[0].getMessage()


def test_derived_subset_keeps_labelled_rows(tmp_path: Path) -> None:
    ds = load_fewshot_dataset("tiny-sub", _tiny_root(tmp_path / "data"), tmp_path / "cache")
    assert ds.property_names == ["task_b"]
    assert ds.source_rows == [1, 4]  # row 3 has a label but no valid SMILES
    assert _nan_list(ds.labels) == [[0.0], [1.0]]
    assert (ds.parse_report.rows, ds.parse_report.failed) == (3, 1)


def test_gzipped_source(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "moleculenet").mkdir(parents=True)
    with gzip.open(root / "moleculenet/tiny.csv.gz", "wt") as handle:
        handle.write(TINY_CSV)
    tasks = json.loads(json.dumps(TINY_TASKS))
    tasks["datasets"]["tiny"]["file"] = "moleculenet/tiny.csv.gz"
    (root / datasets.TASKS_FILE).write_text(json.dumps(tasks))
    ds = load_fewshot_dataset("tiny", root, tmp_path / "cache")
    assert ds.source_rows == [1, 2, 4, 5]


def test_bad_label_value_names_file_row_and_column(tmp_path: Path) -> None:
    bad = TINY_CSV.replace("0.0,1,m4", "0.0,yes,m4")
    with pytest.raises(ValueError, match=r"tiny\.csv: data row 4, column 'task_b'"):
        load_fewshot_dataset("tiny", _tiny_root(tmp_path / "data", bad), tmp_path / "cache")


def test_missing_label_column_is_an_error(tmp_path: Path) -> None:
    no_b = "mol_smiles,other\nCCO,1\n"
    with pytest.raises(ValueError, match="task_b"):
        load_fewshot_dataset("tiny", _tiny_root(tmp_path / "data", no_b), tmp_path / "cache")


def test_cache_reused_then_rebuilt_on_source_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = _tiny_root(tmp_path / "data"), tmp_path / "cache"
    counter = ParseCounter(monkeypatch)
    load_fewshot_dataset("tiny", root, cache)
    assert counter.calls == 5
    load_fewshot_dataset("tiny", root, cache)
    assert counter.calls == 5  # warm
    _tiny_root(root, TINY_CSV + "1,1,m6,CCN\n")
    ds = load_fewshot_dataset("tiny", root, cache)
    assert counter.calls == 11 and ds.num_molecules == 5
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and all(FEATURIZER_VERSION in f for f in files)
    assert not any(f.endswith(".tmp") for f in files)


def test_cache_rebuilt_on_featurizer_version_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = _tiny_root(tmp_path / "data"), tmp_path / "cache"
    counter = ParseCounter(monkeypatch)
    load_fewshot_dataset("tiny", root, cache)
    monkeypatch.setattr(processed_cache, "FEATURIZER_VERSION", "test-v999")
    load_fewshot_dataset("tiny", root, cache)
    assert counter.calls == 10
    assert any("test-v999" in p.name for p in cache.iterdir())


def test_unreadable_cache_is_rebuilt(tmp_path: Path) -> None:
    root, cache = _tiny_root(tmp_path / "data"), tmp_path / "cache"
    load_fewshot_dataset("tiny", root, cache)
    (cache_file,) = cache.iterdir()
    cache_file.write_bytes(b"garbage")
    assert load_fewshot_dataset("tiny", root, cache).num_molecules == 4


def test_missing_source_file(tmp_path: Path) -> None:
    root = _tiny_root(tmp_path / "data")
    (root / "moleculenet/tiny.csv").unlink()
    with pytest.raises(DataFileMissing, match="gsrl data download") as info:
        load_fewshot_dataset("tiny", root, tmp_path / "cache")
    assert str(root / "moleculenet/tiny.csv") in str(info.value)


def test_toxcast_subset_needs_the_tasks_file(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "moleculenet").mkdir(parents=True)
    with pytest.raises(DataFileMissing, match="fewshot_tasks.json"):
        load_fewshot_dataset("toxcast-APR", root, tmp_path / "cache")


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown few-shot dataset") as info:
        load_fewshot_dataset("nope", _tiny_root(tmp_path / "data"), tmp_path / "cache")
    assert "pcba" in str(info.value) and "tiny-sub" in str(info.value)  # registry and tasks-file names


def test_registry_holds_every_builtin_and_pcba_is_a_plain_entry() -> None:
    assert tuple(FEWSHOT_REGISTRY) == FEWSHOT_DATASETS
    pcba = FEWSHOT_REGISTRY["pcba"]
    assert pcba.layout is not None and pcba.layout.source == "moleculenet/pcba.csv.gz"
    assert "128-task" in pcba.missing_hint
    assert all(FEWSHOT_REGISTRY[n].layout is None for n in FEWSHOT_DATASETS if n.startswith("toxcast-"))
    assert FEWSHOT_REGISTRY["sider"].layout.train_properties == tuple(range(21))


def test_registered_dataset_loads_without_a_tasks_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "FEWSHOT_REGISTRY", dict(FEWSHOT_REGISTRY))
    layout = datasets.DatasetSpec("tiny", "moleculenet/tiny.csv", "mol_smiles", ("task_b",), (0,), (), False)
    register_fewshot_dataset(FewShotEntry("tiny", layout, missing_hint="bring your own"))
    root = _tiny_root(tmp_path / "data", tasks=None)
    ds = load_fewshot_dataset("tiny", root, tmp_path / "cache")
    assert ds.property_names == ["task_b"] and ds.source_rows == [1, 2, 4, 5]
    with pytest.raises(ValueError, match="already registered"):
        register_fewshot_dataset(FewShotEntry("tiny", layout))
    (root / "moleculenet/tiny.csv").unlink()
    with pytest.raises(DataFileMissing, match="bring your own"):
        load_fewshot_dataset("tiny", root, tmp_path / "cache")


def test_cache_file_is_keyed_by_name_featurizer_and_source_sha256(
    sider: FewShotDataset, data_root: Path, cache_dir: Path
) -> None:
    sha = sha256_of(data_root / "moleculenet/sider.csv")
    assert (cache_dir / f"sider-{FEATURIZER_VERSION}-{sha}.pt").is_file()  # caches written before stay valid


def test_sider_fallback_split_without_tasks_file(
    tmp_path: Path, data_root: Path, cache_dir: Path, sider: FewShotDataset
) -> None:
    root = tmp_path / "data"
    (root / "moleculenet").mkdir(parents=True)
    (root / "moleculenet/sider.csv").symlink_to(data_root / "moleculenet/sider.csv")
    ds = load_fewshot_dataset("sider", root, cache_dir)
    assert ds.property_names == sider.property_names
    assert (ds.train_properties, ds.test_properties) == (list(range(21)), list(range(21, 27)))


def test_pcba_layout_when_present(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "moleculenet").mkdir(parents=True)
    tasks = [f"PCBA-{i}" for i in range(128)]
    lines = [
        ",".join(["smiles", *tasks]),
        ",".join(["CCO", *["1"] * 128]),
        ",".join(["CN", *[""] * 127, "0"]),
    ]
    with gzip.open(root / "moleculenet/pcba.csv.gz", "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    ds = load_fewshot_dataset("pcba", root, tmp_path / "cache")
    assert ds.num_properties == 128 and ds.num_molecules == 2
    assert ds.test_properties == [0, 1, 2, 3, 4, 123, 124, 125, 126, 127]
    assert ds.train_properties == list(range(5, 123))
    assert ds.class_members(127)[0].tolist() == [1]


def test_resolve_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSRL_DATA_ROOT", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "cfg") == tmp_path / "cfg"
    assert resolve_data_root(None) == tmp_path / "env"
    monkeypatch.delenv("GSRL_DATA_ROOT")
    monkeypatch.setattr(roots, "project_data_root", lambda: tmp_path / "checkout" / "shared" / "data")
    with pytest.raises(ValueError, match="GSRL_DATA_ROOT") as info:
        resolve_data_root(None)
    message = str(info.value)
    assert "`data.root`" in message and "gsrl data download" in message and "\n" not in message
    (tmp_path / "checkout" / "shared" / "data").mkdir(parents=True)
    assert resolve_data_root(None) == tmp_path / "checkout" / "shared" / "data"


def test_the_checkout_s_shared_data_is_the_default_data_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's development layout (this repository beside shared/data) needs no setting at all."""
    monkeypatch.delenv("GSRL_DATA_ROOT", raising=False)
    expected = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not expected.is_dir():
        pytest.skip(f"{expected} is not there on this machine")
    assert resolve_data_root(None) == expected


# --------------------------------------------------------------------------- slow: large sets


@pytest.mark.slow
def test_muv(data_root: Path, cache_dir: Path) -> None:
    ds = load_fewshot_dataset("muv", data_root, cache_dir)
    assert (ds.num_molecules, ds.num_properties) == (93087, 17)
    assert [ds.property_names[i] for i in ds.test_properties] == [
        "MUV-832", "MUV-846", "MUV-852", "MUV-858", "MUV-859"
    ]
    assert int((ds.labels == 1).sum()) == 489


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in FEWSHOT_DATASETS if n.startswith("toxcast-")])
def test_toxcast_subsets_match_documented_counts(name: str, data_root: Path, cache_dir: Path) -> None:
    entry = json.loads((data_root / datasets.TASKS_FILE).read_text())["datasets"][name]
    ds = load_fewshot_dataset(name, data_root, cache_dir)
    assert ds.num_molecules == entry["n_rows_derived_rdkit_parsable"]
    assert ds.property_names == entry["label_columns"]
    split = entry["gsmeta_split"]
    assert (len(ds.train_properties), len(ds.test_properties)) == (split["n_train"], split["n_test"])
    assert (~torch.isnan(ds.labels)).any(dim=1).all()
