"""The dataset registries (property sets, corpus formats), the shared parse summary and empty graph sets."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from gsrl.data import corpora
from gsrl.data.corpora import CORPUS_FORMATS, CorpusFormat, format_of, read_smiles, register_corpus_format
from gsrl.data.graphs import MoleculeGraphs
from gsrl.data.property_datasets import (
    PROPERTY_DATASETS,
    PROPERTY_SOURCES,
    PropertySource,
    load_property_dataset,
    property_source,
    register_property_dataset,
)
from gsrl.data.scaffold import ScaffoldSplit
from gsrl.data.smiles_graphs import ParseReport
from gsrl.finetune.benchmark import dataset_summary


def _csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)


# --------------------------------------------------------------------------- property datasets


def test_unknown_property_dataset_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown property dataset 'nope'; known: bbbp, tox21") as info:
        load_property_dataset("nope", tmp_path, tmp_path / "cache")
    assert all(name in str(info.value) for name in PROPERTY_DATASETS)
    assert property_source("bace").smiles_column == "mol"


def test_registered_property_dataset_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gsrl.data import property_datasets

    monkeypatch.setattr(property_datasets, "PROPERTY_SOURCES", dict(PROPERTY_SOURCES))
    source = PropertySource("Mine", "mine/labels.csv", "smiles", ("active",), 1)
    register_property_dataset("mine", source)
    with pytest.raises(ValueError, match="already registered"):
        register_property_dataset("mine", source)
    _csv(tmp_path / "mine/labels.csv", [["smiles", "active"], ["CCO", "1"], ["CCN", "0"]])
    mine = load_property_dataset("mine", tmp_path, tmp_path / "cache")
    assert mine.task_names == ["active"] and mine.num_tasks == 1 and mine.num_molecules == 2
    assert [p.name.split("-")[:2] for p in (tmp_path / "cache").iterdir()] == [["property", "mine"]]


# --------------------------------------------------------------------------- summaries


def test_parse_summary_serves_the_report_and_the_finetune_results(tmp_path: Path) -> None:
    report = ParseReport("f.csv", 3, 2, 1, [(2, "x")])
    assert report.summary() == {"source_file": "f.csv", "rows": 3, "parsed": 2, "failed": 1}
    _csv(tmp_path / "moleculenet/bbbp.csv", [["smiles", "p_np"], ["CCO", "1"], ["not_a_smiles", "0"], ["CCN", "0"]])
    bbbp = load_property_dataset("bbbp", tmp_path, tmp_path / "cache")
    split = ScaffoldSplit(np.array([0]), np.array([1]), np.array([], dtype=np.int64))
    summary = dataset_summary(bbbp, split)
    assert list(summary) == ["source_file", "rows", "molecules", "invalid_smiles", "tasks", "split"]
    assert (summary["rows"], summary["molecules"], summary["invalid_smiles"], summary["tasks"]) == (3, 2, 1, 1)
    assert summary["split"] == {"train": 1, "valid": 1, "test": 0}


# --------------------------------------------------------------------------- corpus formats


def test_corpus_format_follows_the_suffix_else_the_documented_default(tmp_path: Path) -> None:
    assert [format_of(Path(n)) for n in ("a.csv", "a.csv.gz", "a.smi.gz", "a.txt", "a")] == [
        "csv", "csv", "smiles-lines", "smiles-lines", corpora.DEFAULT_CORPUS_FORMAT,
    ]
    source = tmp_path / "corpus.csv"
    source.write_text("smiles\nCCO\nCCN\n")
    assert read_smiles(source) == ["CCO", "CCN"]
    assert read_smiles(source, file_format="smiles-lines") == ["CCO", "CCN"]  # header line 'smiles' dropped
    with pytest.raises(ValueError, match="Unknown corpus format 'sdf'; known: csv, smiles-lines"):
        read_smiles(source, file_format="sdf")


def test_registered_corpus_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpora, "CORPUS_FORMATS", dict(CORPUS_FORMATS))
    register_corpus_format("reversed", CorpusFormat((".rev",), lambda path, column: path.read_text().split()[::-1]))
    with pytest.raises(ValueError, match="already registered"):
        register_corpus_format("csv", CORPUS_FORMATS["csv"])
    source = tmp_path / "corpus.rev"
    source.write_text("CCO CCN")
    assert format_of(source) == "reversed" and read_smiles(source) == ["CCN", "CCO"]


# --------------------------------------------------------------------------- graphs


def test_graphs_from_no_molecules() -> None:
    graphs = MoleculeGraphs.from_arrays([], [], [])
    assert len(graphs) == 0
    assert {k: tuple(v.shape) for k, v in graphs.to_tensors().items()} == {
        "x": (0, 2), "edge_index": (2, 0), "edge_attr": (0, 2), "node_ptr": (1,), "edge_ptr": (1,),
    }
