"""Pretraining corpora: reading SMILES files, a sharded cache built by Ray tasks, resumable builds."""

from __future__ import annotations

import gzip

import pytest
import ray
import torch
from torch_geometric.data import Batch

from actors.corpus_featurizer import build_corpus
from gsrl.data.corpora import CorpusCache, load_shards, read_smiles
from gsrl.data.featurize import smiles_to_graph

SMILES = ["CCO", "c1ccccc1", "not-a-smiles", "CC(=O)O", "C1CC1N", "[Xx]", "CCN(CC)CC", "O=C=O", "CCCl"]


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


def test_read_smiles_from_csv_gzip_and_plain_text(tmp_path, data_root):
    csv_file = tmp_path / "corpus.csv"
    csv_file.write_text("id,smiles\n1,CCO\n2,c1ccccc1\n")
    assert read_smiles(csv_file) == ["CCO", "c1ccccc1"]
    text = tmp_path / "corpus.smi.gz"
    with gzip.open(text, "wt") as handle:
        handle.write("smiles\nCCO name-1\n\nCCN\n")
    assert read_smiles(text) == ["CCO", "CCN"]
    moses = read_smiles(data_root / "moses" / "moses_test.csv.gz")  # header SMILES; 176,074 molecules
    assert len(moses) == 176_074 and moses[0] == "CC1C2CCC(C2)C1CN(CCO)C(=O)c1ccc(Cl)cc1"
    with pytest.raises(ValueError, match="no SMILES column"):
        read_smiles(csv_file, column="structure")


def test_sharded_build_counts_failures_and_matches_the_featurizer(tmp_path, ray_session):
    source = tmp_path / "corpus.txt"
    source.write_text("\n".join(SMILES) + "\n")
    cache = CorpusCache(source, tmp_path / "cache", shard_size=4)
    manifest = build_corpus(cache, parallelism=2)
    assert [(s.index, s.start_row, s.rows) for s in manifest.shards] == [(0, 1, 4), (1, 5, 4), (2, 9, 1)]
    assert (manifest.rows, manifest.parsed, manifest.failed) == (9, 7, 2)
    assert manifest.failed_examples() == [(3, "not-a-smiles"), (6, "[Xx]")]

    corpus = load_shards(cache.directory, [0, 1, 2])
    graphs = corpus.graphs
    assert corpus.labels is None
    expected = [smiles_to_graph(s) for s in SMILES]
    expected = Batch.from_data_list([g for g in expected if g is not None])
    batch = graphs.collate_ids(range(len(graphs)))
    assert len(graphs) == 7
    for key in ("x", "edge_index", "edge_attr", "batch"):
        assert torch.equal(getattr(batch, key), getattr(expected, key)), key


def test_an_interrupted_build_resumes_and_a_changed_file_rebuilds(tmp_path, ray_session):
    source = tmp_path / "corpus.txt"
    source.write_text("\n".join(SMILES) + "\n")
    cache = CorpusCache(source, tmp_path / "cache", shard_size=4)
    build_corpus(cache, parallelism=1)
    cache.shard_path(1).write_bytes(b"truncated")  # as a crash mid-write would leave it (without its report)
    untouched = cache.shard_path(0).stat().st_mtime_ns
    manifest = build_corpus(cache, parallelism=1)
    assert manifest.parsed == 7 and cache.finished_report(1) is not None
    assert cache.shard_path(0).stat().st_mtime_ns == untouched  # complete shards are reused

    source.write_text("\n".join(SMILES[:3]) + "\n")
    changed = CorpusCache(source, tmp_path / "cache", shard_size=4)
    assert changed.directory != cache.directory
    assert build_corpus(changed, parallelism=1).rows == 3


def test_a_labelled_corpus_keeps_each_molecules_labels(tmp_path, ray_session):
    source = tmp_path / "labelled.csv"
    source.write_text("smiles,mol_id,active,toxic\nCCO,a,1,0\nnot-a-smiles,b,0,1\nc1ccccc1,c,,1\nCCN,d,0,\n")
    cache = CorpusCache(source, tmp_path / "cache", shard_size=3, labels=True)
    manifest = build_corpus(cache, parallelism=1)
    assert manifest.task_names == ["active", "toxic"] and (manifest.parsed, manifest.failed) == (3, 1)
    corpus = load_shards(cache.directory, [0, 1])
    nan = float("nan")
    torch.testing.assert_close(corpus.labels, torch.tensor([[1.0, 0.0], [nan, 1.0], [0.0, nan]]), equal_nan=True)
    benzene = corpus.molecule(1)
    assert benzene.num_nodes == 6 and torch.equal(benzene.y.isnan(), torch.tensor([[True, False]]))
