"""The encoder gsrl pretrained itself: shipped with its metadata, loadable strictly, wired into Pre-GS-Meta."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gsrl.config import load_config
from gsrl.checkpoint import sha256_of
from gsrl.data.features import FEATURIZER_VERSION
from gsrl.models.checkpoints import SHIPPED_DIR, resolve_checkpoint
from gsrl.models.encoder import MoleculeEncoder
from gsrl.runtime import build_model, load_dataset

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SHIPPED = "{shipped}/gin_attribute_masking_moses.pth"
MOSES_TRAIN_SHA256 = "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c"


def test_shipped_encoder_has_its_provenance_and_loads_strictly() -> None:
    path = resolve_checkpoint(SHIPPED, data_root=None)
    assert path.parent == SHIPPED_DIR and path.stat().st_size <= 10 * 1024 * 1024
    metadata = json.loads(path.with_suffix(".json").read_text())
    assert metadata["strategy"] == "attribute_masking" and metadata["epochs"] >= 1
    assert metadata["corpus"]["sha256"] == MOSES_TRAIN_SHA256
    assert metadata["featurizer_version"] == FEATURIZER_VERSION and metadata["git_commit"]
    assert metadata["file_sha256"] == sha256_of(path)
    assert "gsrl pretrain" in metadata["command"]
    encoder = MoleculeEncoder("gin", 5, 300)
    encoder.load_pretrained(path)
    state = torch.load(path, weights_only=True)
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in state.items())


def test_placeholders_resolve_and_missing_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "x.pth").touch()
    assert resolve_checkpoint("{data_root}/pretrained/x.pth", tmp_path) == tmp_path / "pretrained" / "x.pth"
    with pytest.raises(FileNotFoundError, match=r"\{shipped\}/nope.pth \(= .*gsrl/models/pretrained/nope.pth\)"):
        resolve_checkpoint("{shipped}/nope.pth", tmp_path)
    with pytest.raises(ValueError, match="no data root"):
        resolve_checkpoint("{data_root}/x.pth", None)


@pytest.mark.parametrize("dataset", ["sider", "tox21"])
def test_pre_gsmeta_configs_only_add_the_shipped_encoder(dataset: str) -> None:
    config = load_config(CONFIGS / "pre-gsmeta" / f"{dataset}-10shot.yaml")
    base = load_config(CONFIGS / "gsmeta" / f"{dataset}-10shot.yaml")
    assert config.name == f"pre-{base.name}" and config.encoder.pretrained == SHIPPED
    base.name, base.encoder.pretrained = config.name, config.encoder.pretrained
    assert config == base


def test_pre_gsmeta_model_starts_from_the_shipped_weights(tiny_config) -> None:
    config = tiny_config("encoder.num_layers=5", "encoder.emb_dim=300", f"encoder.pretrained='{SHIPPED}'")
    model = build_model(load_dataset(config), config, seed=0)
    state = torch.load(resolve_checkpoint(SHIPPED, None), weights_only=True)
    assert all(torch.equal(model.encoder.state_dict()[k], v) for k, v in state.items())
    scratch = build_model(load_dataset(config), tiny_config("encoder.num_layers=5", "encoder.emb_dim=300"), seed=0)
    assert not torch.equal(scratch.encoder.state_dict()["gnns.0.mlp.0.weight"], state["gnns.0.mlp.0.weight"])
