"""Everything gsrl does through Ray's private APIs, kept in this one module.

Two things need them, and Ray has no public API for either:

* the embedded cluster's single-node switch (``ray._private.ray_constants.ENABLE_RAY_CLUSTER``), read
  once when Ray is imported, so ``gsrl.cluster.connect`` sets it in the live module as well as in the
  environment;
* Ray Train's torch process group kept on loopback. Ray Train lets rank 0 host torch.distributed's
  rendezvous store, and torch binds that server to every interface; gloo and NCCL listen on whichever
  interface the host name resolves to. On the embedded single-node cluster, whose Ray endpoints all
  listen on loopback (gsrl/cluster.py), that would leave an unauthenticated key-value store open to the
  network for the whole job. ``LoopbackTorchConfig`` hosts the store on a socket bound to 127.0.0.1
  (torch's ``master_listen_fd``) and points gloo and NCCL at the loopback interface; it extends Ray
  Train's private torch backend. Jobs that join a real cluster keep Ray's own ``TorchConfig``.

The supported Ray range is pinned in pyproject.toml; tests/test_ray_internals.py checks that the
installed Ray is inside it and still has every private name used here.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import psutil
import ray
import torch.distributed as dist
from ray._private import ray_constants
from ray.train._internal.worker_group import WorkerGroup as V1WorkerGroup
from ray.train.torch import TorchConfig
from ray.train.torch.config import _set_torch_distributed_env_vars, _setup_torch_process_group, _TorchBackend

__all__ = ["LOOPBACK", "LoopbackTorchConfig", "disable_multinode_clusters", "loopback_interface"]

LOOPBACK = "127.0.0.1"

# Rank 0's store server; the store init_process_group opens on the same port shares it (multi-tenant).
_hosted_store: dist.TCPStore | None = None


def disable_multinode_clusters() -> None:
    """Ray's laptop mode, in the already-imported constant: the node address becomes 127.0.0.1."""
    ray_constants.ENABLE_RAY_CLUSTER = False


def loopback_interface() -> str:
    """The name of the interface that holds 127.0.0.1 ("lo" on Linux, "lo0" on macOS)."""
    for name, addresses in psutil.net_if_addrs().items():
        if any(address.address == LOOPBACK for address in addresses):
            return name
    raise RuntimeError(f"no network interface holds {LOOPBACK}; the embedded cluster needs a loopback interface")


def _host_store_on_loopback(timeout_s: int) -> int:
    """Start the rendezvous store's server on a free loopback port of this worker; returns the port."""
    global _hosted_store
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    listener.listen()
    port = listener.getsockname()[1]
    _hosted_store = dist.TCPStore(LOOPBACK, port, is_master=True, wait_for_workers=False, multi_tenant=True,
                                  master_listen_fd=listener.detach(), timeout=timedelta(seconds=timeout_s))
    return port


def _release_store() -> None:
    global _hosted_store
    _hosted_store = None


def _join_process_group(backend: str, world_rank: int, world_size: int, port: int, timeout_s: int) -> None:
    """Join the process group through the loopback store, with gloo/NCCL sockets on the loopback interface."""
    interface = loopback_interface()
    os.environ.update({"MASTER_ADDR": LOOPBACK, "MASTER_PORT": str(port),
                       "GLOO_SOCKET_IFNAME": interface, "NCCL_SOCKET_IFNAME": interface})
    _setup_torch_process_group(backend, world_rank, world_size, "env://", timeout_s)


class _LoopbackTorchBackend(_TorchBackend):
    """Ray's torch backend with its rendezvous moved onto loopback; shutdown stays Ray's."""

    def on_start(self, worker_group, backend_config: LoopbackTorchConfig) -> None:
        if backend_config.backend is None:
            raise ValueError("LoopbackTorchConfig needs an explicit backend ('gloo' or 'nccl')")
        port = worker_group.execute_single(0, _host_store_on_loopback, timeout_s=backend_config.timeout_s)
        if not isinstance(worker_group, V1WorkerGroup):  # Ray Train v2 sets RANK, LOCAL_RANK, ... here
            worker_group.execute(_set_torch_distributed_env_vars)
        ray.get([worker_group.execute_single_async(rank, _join_process_group, backend=backend_config.backend,
                                                   world_rank=rank, world_size=len(worker_group), port=port,
                                                   timeout_s=backend_config.timeout_s)
                 for rank in range(len(worker_group))])

    def on_shutdown(self, worker_group, backend_config: LoopbackTorchConfig) -> None:
        super().on_shutdown(worker_group, backend_config)
        worker_group.execute_single(0, _release_store)


@dataclass
class LoopbackTorchConfig(TorchConfig):
    """``TorchConfig`` whose process group listens on loopback only (single-node, embedded clusters)."""

    @property
    def backend_cls(self) -> type[_TorchBackend]:
        return _LoopbackTorchBackend
