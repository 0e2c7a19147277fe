"""The layer contracts of pyproject.toml hold, cover every module of gsrl, and catch a wrong-way import."""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import gsrl

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gsrl", "envs", "actors", "learners")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contracts() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _lint(tree: Path) -> subprocess.CompletedProcess:
    """lint-imports over the packages found in `tree` (first on the path), with the contracts of `tree`."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"], cwd=tree,
                          env=environment, capture_output=True, text=True, timeout=300)


def test_every_module_of_gsrl_sits_in_exactly_one_layer() -> None:
    layers = [[name.strip() for name in layer.replace("|", ":").split(":")]
              for layer in next(c for c in _contracts()["contracts"] if c["id"] == "layers")["layers"]]
    placed = [name for layer in layers for name in layer if name.startswith("gsrl.")]
    children = sorted(f"gsrl.{module.name}" for module in pkgutil.iter_modules(gsrl.__path__))
    assert sorted(placed) == children
    assert len(placed) == len(set(placed))


def test_the_layer_and_acyclicity_contracts_are_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_library_module_importing_a_role_breaks_the_layers(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    stats = tmp_path / "gsrl" / "stats.py"
    stats.write_text(stats.read_text() + "\nimport learners.meta_learner  # noqa: E402,F401\n")
    result = _lint(tmp_path)
    assert result.returncode == 1
    assert "gsrl.stats -> learners.meta_learner" in result.stdout
    assert "1 kept, 1 broken" in result.stdout
