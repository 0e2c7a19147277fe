"""The pretraining Ray Train job end to end on a tiny corpus: encoder, metadata, TensorBoard, resume."""

from __future__ import annotations

import json

import pytest
import ray
import torch
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gsrl.cli import main
from gsrl.models.encoder import MoleculeEncoder

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "C1CCNCC1", "OC(=O)c1ccccc1", "CCOC(=O)C",
          "Cc1ccccc1N", "ClCCCl", "CC(C)CO", "c1ccncc1", "NCCO", "CCCCCCO", "O=C1CCCCC1", "CSC", "CC#N",
          "Oc1ccc(Cl)cc1", "CCOCC", "NC(=O)N", "CC(C)(C)O", "c1ccc2ccccc2c1", "OCC(O)CO", "CCS", "CN(C)C=O"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.smi"
    path.write_text("\n".join(SMILES + ["not-a-smiles"]) + "\n")
    return path


def _pretrain(corpus, tmp_path, epochs: int, resume: bool = False):
    run = tmp_path / "runs" / "tiny"
    start = ["--resume", str(run)] if resume else [
        "-c", "configs/pretrain/attribute_masking.yaml", "-o", f"corpus.path={corpus}", "-o", "corpus.shard_size=10",
        "-o", f"data.cache_dir={tmp_path / 'cache'}", "-o", "encoder.num_layers=2", "-o", "encoder.emb_dim=16",
        "-o", "batch_size=4", "-o", "run.workers=2", "-o", "run.threads=1", "-o", f"run.output_dir={tmp_path / 'runs'}",
        "-o", "name=tiny"]
    result = CliRunner().invoke(main, ["pretrain", *start, "-o", f"epochs={epochs}"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return run


def test_pretraining_writes_a_hu_format_encoder_logs_from_rank_0_and_resumes(corpus, tmp_path):
    try:
        run = _pretrain(corpus, tmp_path, epochs=2)
        metadata = json.loads((run / "metadata.json").read_text())
        assert metadata["strategy"] == "attribute_masking" and metadata["epochs"] == 2
        assert metadata["corpus"]["molecules"] == 24 and metadata["corpus"]["failed_smiles"] == 1
        assert metadata["featurizer_version"] and "git_commit" in metadata
        encoder = MoleculeEncoder("gin", num_layers=2, emb_dim=16)
        encoder.load_state_dict(torch.load(run / "encoder.pth", weights_only=True), strict=True)

        again = CliRunner().invoke(main, ["pretrain", "-c", "configs/pretrain/attribute_masking.yaml",
                                          "-o", f"run.output_dir={tmp_path / 'runs'}", "-o", "name=tiny"])
        assert again.exit_code == 1 and "already holds a run; use --resume" in again.output  # nothing overwritten
        resumed = _pretrain(corpus, tmp_path, epochs=3, resume=True)  # the saved config, one more epoch
        assert json.loads((resumed / "metadata.json").read_text())["epochs"] == 3
        results = json.loads((resumed / "results.json").read_text())
        assert results["encoder_file"] == "encoder.pth" and results["epochs"] == 3
        assert (resumed / "config.yaml").exists() and (resumed / "checkpoints").is_dir()
    finally:
        ray.shutdown()
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    steps = [e.step for e in events.Scalars("pretrain/loss")]
    assert steps == [1, 2, 3]  # one writer (rank 0), and the resumed job ran only epoch 3
    assert {"pretrain/loss", "pretrain/atom_accuracy"} <= set(events.Tags()["scalars"])


def test_supervised_pretraining_on_a_labelled_csv(tmp_path, data_root):
    """Any labelled CSV: here the first 40 rows of Tox21 (12 tasks, missing labels included)."""
    lines = (data_root / "moleculenet" / "tox21.csv").read_text().splitlines()[:41]
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("\n".join(lines) + "\n")
    args = ["pretrain", "-c", "configs/pretrain/supervised.yaml", "-o", f"corpus.path={labelled}",
            "-o", "corpus.shard_size=20", "-o", f"data.cache_dir={tmp_path / 'cache'}", "-o", "encoder.num_layers=2",
            "-o", "encoder.emb_dim=16", "-o", "batch_size=8", "-o", "run.workers=1", "-o", "epochs=1",
            "-o", "run.threads=1", "-o", f"run.output_dir={tmp_path / 'runs'}", "-o", "name=supervised"]
    try:
        result = CliRunner().invoke(main, args)
    finally:
        ray.shutdown()
    assert result.exit_code == 0, result.output + repr(result.exception)
    metadata = json.loads((tmp_path / "runs" / "supervised" / "metadata.json").read_text())
    assert metadata["strategy"] == "supervised" and metadata["settings"]["num_tasks"] == 12
    assert metadata["corpus"]["molecules"] == 40
    encoder = MoleculeEncoder("gin", num_layers=2, emb_dim=16)
    encoder.load_state_dict(torch.load(tmp_path / "runs" / "supervised" / "encoder.pth", weights_only=True))
