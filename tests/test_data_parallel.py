"""A data-parallel Ray Train job on the embedded cluster: its process group works and listens on loopback only,
a job the cluster cannot place is refused before it starts, and what GPU workers checkpoint loads without a GPU.

Ray Train's default rendezvous lets rank 0's torch store listen on every interface ('::'); the job's
sockets are read from inside each worker while the group is up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
import ray
import ray.train
import torch
import torch.distributed as dist

from gsrl.cluster import ClusterTooSmall, connect
from gsrl.config import DataParallelRay, DataParallelRun
from gsrl.checkpoint import load_on_cpu
from learners.data_parallel import connect_for, fit
from gsrl.ray_internals import loopback_interface

from .conftest import LOOPBACK_ADDRESSES


def _record_sockets(loop_config: dict[str, Any]) -> None:
    """All-reduce the ranks, then write this worker's listening sockets and rendezvous settings."""
    rank = ray.train.get_context().get_world_rank()
    total = torch.tensor([float(rank)])
    dist.all_reduce(total)
    listening = [[c.laddr.ip, c.laddr.port] for c in psutil.Process().net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]
    dist.barrier()  # every rank has read its sockets before rank 0 may close the store
    record = {"sum_of_ranks": float(total), "listening": listening, "master_port": int(os.environ["MASTER_PORT"]),
              "gloo_interface": os.environ.get("GLOO_SOCKET_IFNAME")}
    (Path(loop_config["out"]) / f"rank{rank}.json").write_text(json.dumps(record))
    ray.train.report({"rank": rank})


def _job(workers: int, worker_cpus: float, worker_gpus: float) -> SimpleNamespace:
    """The data-parallel sections of a job config on the embedded cluster, without retries."""
    return SimpleNamespace(run=DataParallelRun(workers=workers),
                           ray=DataParallelRay(worker_cpus=worker_cpus, worker_gpus=worker_gpus, max_failures=0))


@pytest.fixture
def embedded_cluster():
    assert connect(None), "another test left Ray running"
    yield
    ray.shutdown()


def test_job_on_the_embedded_cluster_keeps_its_process_group_on_loopback(embedded_cluster, tmp_path):
    out = tmp_path / "sockets"
    out.mkdir()
    fit(_record_sockets, {"out": str(out)}, tmp_path / "run", _job(workers=2, worker_cpus=0.5, worker_gpus=0))
    records = [json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["sum_of_ranks"] for r in records] == [1.0, 1.0]  # a working two-rank group
    assert all(r["gloo_interface"] == loopback_interface() for r in records)
    rank0 = records[0]
    # The rendezvous store is rank 0's: it is among the sockets checked, and on loopback like all of them.
    assert rank0["master_port"] in [port for _, port in rank0["listening"]]
    exposed = [entry for r in records for entry in r["listening"] if entry[0] not in LOOPBACK_ADDRESSES]
    assert not exposed, exposed


def test_job_the_embedded_cluster_cannot_place_fails_at_once_naming_the_keys(embedded_cluster):
    """Ray Train would retry a worker group it cannot place forever; the job stops as it connects."""
    missing_gpus = ray.cluster_resources().get("GPU", 0.0) + 1
    with pytest.raises(ClusterTooSmall, match=r"run\.workers × ray\.worker_cpus/worker_gpus .*GPU: needs"):
        connect_for(_job(workers=1, worker_cpus=0.5, worker_gpus=missing_gpus))


def _save_as_a_gpu_worker(state: dict[str, Any], path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.save as a CUDA worker runs it: every storage is tagged with the device it lives on."""
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(state, path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a process that cannot see a GPU")
def test_a_checkpoint_written_on_a_gpu_loads_and_restores_without_one(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    path = tmp_path / "state.pt"
    _save_as_a_gpu_worker({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 4}, path,
                          monkeypatch)
    with pytest.raises(RuntimeError, match="CUDA"):  # what the report task (a CPU task) hit before
        torch.load(path, weights_only=True)

    state = load_on_cpu(path)
    restored = torch.nn.Linear(3, 2)
    restored_optimizer = torch.optim.Adam(restored.parameters())
    restored.load_state_dict(state["model"])
    restored_optimizer.load_state_dict(state["optimizer"])
    assert state["epoch"] == 4
    assert torch.equal(restored.weight, model.weight) and torch.equal(restored.bias, model.bias)
    for key in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(restored_optimizer.state[restored.weight][key], optimizer.state[model.weight][key])
