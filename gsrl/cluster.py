"""Connecting the driver to Ray: an embedded single-node cluster by default, or an existing one.

The embedded cluster binds every Ray endpoint to loopback: Ray's single-node switch
(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, the mode Ray uses on laptops) makes the node address
127.0.0.1, and every Ray process listens on the node address. Ray's token authentication, on by
default for local clusters since Ray 2.5x, stays as the user configured it. Real clusters are
joined with `ray.address` ("auto" or HOST:PORT); deploy/README.md shows their token set-up.
Private Ray APIs stay in gsrl/ray_internals.py.
"""

from __future__ import annotations

import logging
import os

import ray

from gsrl.config import Config
from gsrl.data.roots import DATA_ROOT_ENV, project_data_root
from gsrl.errors import ConfigError
from gsrl.ray_internals import disable_multinode_clusters

log = logging.getLogger(__name__)

SINGLE_NODE_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class ClusterTooSmall(ConfigError):
    """The config asks for more CPUs/GPUs than the cluster has; the CLI reports it like any config error."""


def connect(address: str | None) -> bool:
    """Initialise Ray unless this process already is: join the cluster at `address`, or start one on
    loopback when it is None. True when this call started it."""
    if ray.is_initialized():
        return False
    if address is None:
        # Ray reads the switch into a constant when it is imported; set both, so this process and the
        # node processes it starts agree on the loopback address.
        os.environ[SINGLE_NODE_SWITCH] = "0"
        disable_multinode_clusters()
        ray.init(include_dashboard=False, log_to_driver=True, configure_logging=False,
                 runtime_env=_embedded_runtime_env())
    else:
        ray.init(address=address, log_to_driver=True, configure_logging=False)
    log.info("Ray: %s", ray.cluster_resources())
    return True


def _embedded_runtime_env() -> dict | None:
    """The embedded cluster's workers find the data where this process does. Without the config key or
    GSRL_DATA_ROOT (which they inherit), this process falls back on the checkout's shared/data, but a
    worker imports gsrl from the current directory first, which may be another copy of the code: it is
    given this checkout's folder explicitly."""
    beside_checkout = project_data_root()
    if os.environ.get(DATA_ROOT_ENV) or not beside_checkout.is_dir():
        return None
    return {"env_vars": {DATA_ROOT_ENV: str(beside_checkout)}}


def require_resources(demand: dict[str, float], keys: str, embedded: bool) -> None:
    """Fail fast, naming the config ``keys`` behind ``demand``, when the embedded cluster can never place it:
    Ray would otherwise wait forever for the missing CPUs or GPUs. A real cluster's autoscaler may still add
    nodes, so there it is only a warning."""
    available = ray.cluster_resources()
    short = {k: (v, available.get(k, 0.0)) for k, v in demand.items() if v > available.get(k, 0.0) + 1e-9}
    if not short:
        return
    described = ", ".join(f"{k}: needs {need:g}, cluster has {have:g}" for k, (need, have) in short.items())
    message = f"{keys} exceed the cluster ({described})"
    if embedded:
        raise ClusterTooSmall(message)
    log.warning("%s; waiting for the autoscaler to add nodes", message)


def check_capacity(config: Config) -> None:
    """The meta-training actors (episode workers, and the learner when it is an actor) fit the cluster."""
    settings = config.ray
    demand = {"CPU": config.run.workers * settings.worker_cpus, "GPU": config.run.workers * settings.worker_gpus}
    if settings.learner == "actor":
        demand["CPU"] += settings.learner_cpus
        demand["GPU"] += settings.learner_gpus
    require_resources(demand, "run.workers × ray.worker_cpus/worker_gpus (+ the learner actor)",
                      embedded=settings.address is None)
