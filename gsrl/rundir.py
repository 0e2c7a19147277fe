"""The one run-directory layout of every gsrl job, and its start/resume rule.

    <run dir>/config.yaml     the resolved config the run was started with
    <run dir>/checkpoints/    checkpoint files + metadata.json (gsrl.checkpoint.CheckpointStore)
    <run dir>/tensorboard/    event files (gsrl.telemetry.Telemetry)
    <run dir>/results.json    written once, when the run has finished

A new run refuses a directory that already holds one; `--resume RUN_DIR` continues the run there
with the config it saved. While a process runs in a directory it holds the directory's lock (an
advisory `fcntl` lock on `.lock`, released by the operating system if the process dies), so a second
process is refused at once instead of writing the same files. Grid jobs give each cell such a
directory under `<output dir>/runs/`.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from typing import Any

from gsrl.checkpoint import RunDirectoryExists, atomic_write_bytes, atomic_write_json

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
RESULTS_FILE = "results.json"
LOCK_FILE = ".lock"


class RunDirectoryBusy(RuntimeError):
    """Another process holds the run directory's lock."""


class RunLock:
    """The held lock of one run directory; `release` (or the process's end) frees it."""

    def __init__(self, run_dir: Path):
        self.handle = open(run_dir / LOCK_FILE, "a+", encoding="utf-8")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise RunDirectoryBusy(f"{run_dir} is in use by {holder}; wait for it to end, or use another "
                                   f"run directory") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        self.handle.flush()

    def release(self) -> None:
        if not self.handle.closed:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


class RunDirectory:
    """The paths of one run directory and its start/resume rule."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.config_file = self.path / CONFIG_FILE
        self.checkpoints = self.path / CHECKPOINTS
        self.tensorboard = self.path / TENSORBOARD
        self.results_file = self.path / RESULTS_FILE

    def holds_a_run(self) -> bool:
        """A run was started here: it saved its config or a checkpoint."""
        return self.config_file.exists() or self.checkpoints.exists()

    def check(self, resume: bool) -> None:
        """A new run needs a directory without one; a resumed run needs the one it continues."""
        if resume and not self.config_file.exists():
            raise FileNotFoundError(f"cannot resume: {self.config_file} does not exist")
        if not resume and self.holds_a_run():
            raise RunDirectoryExists(f"{self.path} already holds a run; use --resume {self.path} or another name")

    def start(self, config_yaml: str, resume: bool) -> RunLock:
        """Begin a new run here, or continue the one here (`check`), holding the directory's lock; the config
        in force is saved. Release the returned lock when the run ends."""
        self.check(resume)
        self.path.mkdir(parents=True, exist_ok=True)
        lock = RunLock(self.path)
        try:
            self.check(resume)  # again under the lock: another process may have started a run meanwhile
            atomic_write_bytes(self.config_file, config_yaml.encode())
        except BaseException:
            lock.release()
            raise
        return lock

    def write_results(self, results: dict[str, Any]) -> Path:
        atomic_write_json(self.results_file, results)
        return self.results_file

    def read_results(self) -> dict[str, Any] | None:
        """The finished run's results, or None while it has not finished."""
        if not self.results_file.is_file():
            return None
        return json.loads(self.results_file.read_text(encoding="utf-8"))
