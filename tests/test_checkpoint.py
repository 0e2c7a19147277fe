"""The one atomic write: whole files or none, with the permissions open() would give them."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch

from gsrl.checkpoint import atomic_torch_save, atomic_write, atomic_write_json, load_on_cpu, sha256_of


def test_files_are_written_with_the_umask_s_permissions_not_mkstemp_s(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "results.json", {"auc": 0.5})
        atomic_torch_save({"w": torch.ones(2)}, tmp_path / "state.pt")
    finally:
        os.umask(previous)
    for name in ("results.json", "state.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    assert json.loads((tmp_path / "results.json").read_text()) == {"auc": 0.5}
    assert torch.equal(load_on_cpu(tmp_path / "state.pt")["w"], torch.ones(2))


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "file.bin"
    atomic_write(target, lambda handle: handle.write(b"old"))
    before = sha256_of(target)

    def half_then_fail(handle):
        handle.write(b"new, half written")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert sha256_of(target) == before and sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]
