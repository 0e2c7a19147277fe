"""The one run-directory layout of every gsrl job, and its start/resume rule.

    <run dir>/config.yaml     the resolved config the run was started with
    <run dir>/checkpoints/    checkpoint files + metadata.json (gsrl.checkpoint.CheckpointStore)
    <run dir>/tensorboard/    event files (gsrl.telemetry.Telemetry)
    <run dir>/results.json    written once, when the run has finished

A new run refuses a directory that already holds one; `--resume RUN_DIR` continues the run there
with the config it saved. Grid jobs give each cell such a directory under `<output dir>/runs/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gsrl.checkpoint import RunDirectoryExists, atomic_write_bytes, atomic_write_json

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class RunDirectory:
    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def results_file(self) -> Path:
        return self.path / RESULTS_FILE

    def holds_a_run(self) -> bool:
        """A run was started here: it saved its config or a checkpoint."""
        return self.config_file.exists() or self.checkpoints.exists()

    def check(self, resume: bool) -> None:
        """A new run needs a directory without one; a resumed run needs the one it continues."""
        if resume and not self.config_file.exists():
            raise FileNotFoundError(f"cannot resume: {self.config_file} does not exist")
        if not resume and self.holds_a_run():
            raise RunDirectoryExists(f"{self.path} already holds a run; use --resume {self.path} or another name")

    def start(self, config_yaml: str, resume: bool) -> None:
        """Begin a new run here, or continue the one here (`check`); either way the config in force is saved."""
        self.check(resume)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.config_file, config_yaml.encode())

    def write_results(self, results: dict[str, Any]) -> Path:
        atomic_write_json(self.results_file, results)
        return self.results_file

    def read_results(self) -> dict[str, Any] | None:
        """The finished run's results, or None while it has not finished."""
        if not self.results_file.is_file():
            return None
        return json.loads(self.results_file.read_text(encoding="utf-8"))
