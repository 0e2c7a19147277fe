"""Checkpoints written atomically, listed with sha256 checksums in metadata.json.

A checkpoint file is complete before its name appears in metadata.json, and each load verifies
its checksum, so a run killed mid-write (or a corrupted file) falls back to the previous good
checkpoint with a warning that names the bad one. Files load on the CPU whatever device wrote them
(``load_on_cpu``), with torch.load(weights_only=True).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

log = logging.getLogger(__name__)

METADATA = "metadata.json"


class RunDirectoryExists(RuntimeError):
    """A new run was asked for in a directory that already holds one."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def identity_digest(identity: Any) -> str:
    """A short name for a JSON-able description of a run: grid workloads name run directories with it,
    so a re-run finds the runs of identical settings and never mistakes a changed one for them."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the gsrl source tree when this process first asked (a checkout may move on while a
    long run is going), or None outside a git checkout. ``GSRL_GIT_COMMIT``, when set, wins: a deployment
    that copies the tree (an image, a remote machine) says which commit it copied, since a ``.git`` that
    travelled with it may name an older one."""
    if os.environ.get("GSRL_GIT_COMMIT"):
        return os.environ["GSRL_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def load_on_cpu(path: Path) -> Any:
    """A torch file (tensors and plain containers only) with its tensors on the CPU: torch.load would refuse a
    GPU worker's tensors in a process that sees no GPU (a CPU task, a resume without GPUs)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def cpu_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s weights on the CPU, for the files users load (encoder, model) with a plain torch.load."""
    return {key: value.detach().cpu() for key, value in module.state_dict().items()}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """The one way gsrl writes a file others may read: ``write`` fills a temporary file beside ``path``, which
    is synced and renamed over it, so a reader sees the old file or the whole new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_umask())  # as open() would create it; mkstemp makes 0600
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(payload))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=False).encode())


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda handle: torch.save(obj, handle))


class CheckpointStore:
    def __init__(self, directory: Path, keep: int = 3):
        self.directory = Path(directory)
        self.keep = keep

    def _metadata(self) -> dict[str, Any]:
        path = self.directory / METADATA
        if not path.exists():
            return {"checkpoints": []}
        return json.loads(path.read_text())

    def save(self, iteration: int, state: dict[str, Any], info: dict[str, Any]) -> Path:
        """Write the checkpoint, then record it (with checksum and versions) in metadata.json."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"iter_{iteration:06d}.pt"
        atomic_torch_save(state, path)
        metadata = self._metadata()
        entries = [e for e in metadata["checkpoints"] if e["iteration"] != iteration]
        entries.append({"file": path.name, "iteration": iteration, "sha256": sha256_of(path),
                        "bytes": path.stat().st_size, "written_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        entries.sort(key=lambda e: e["iteration"])
        for stale in entries[: -self.keep]:
            (self.directory / stale["file"]).unlink(missing_ok=True)
        metadata.update(info)
        metadata["checkpoints"] = entries[-self.keep:]
        atomic_write_json(self.directory / METADATA, metadata)
        return path

    def load_latest(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(state, entry) of the newest checkpoint whose checksum verifies; None when there is none."""
        for entry in reversed(self._metadata()["checkpoints"]):
            path = self.directory / entry["file"]
            if not path.exists():
                log.warning("checkpoint %s is listed but missing; trying an older one", path)
                continue
            actual = sha256_of(path)
            if actual != entry["sha256"]:
                log.warning("checkpoint %s is corrupt (sha256 %s, expected %s); trying an older one",
                            path, actual, entry["sha256"])
                continue
            return load_on_cpu(path), entry
        return None
