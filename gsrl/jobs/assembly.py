"""Builders that assemble meta-training's roles from a config (Acme-style: small roles, one place that wires them).

`make_scheduler_env` is also the entry point `gymnasium.make("gsrl/TaskScheduler-v0", config=...)` calls:
the environment made alone gets in-process workers and a driver-side learner. Ray is imported only
when the config asks for it, so the local backend runs where Ray is not installed (e.g. a bare GPU box).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.episode_worker import EpisodeWorker
from actors.worker_group import LocalWorkerGroup, WorkerGroup
from envs.task_scheduler import TaskSchedulerEnv
from gsrl.config import Config, config_from_dict, load_config
from gsrl.data.datasets import FewShotDataset
from gsrl.models.episode_network import EpisodeNetwork
from gsrl.runtime import build_model, load_dataset, resolve_device
from learners.meta_learner import MetaLearner

if TYPE_CHECKING:
    from learners.remote_learner import RemoteMetaLearner


def make_worker_group(config: Config, dataset: FewShotDataset) -> WorkerGroup:
    """The configured backend: in-process workers sharing the driver's dataset, or Ray actors."""
    if config.run.backend == "local":
        return LocalWorkerGroup([EpisodeWorker(config, dataset=dataset) for _ in range(config.run.workers)])
    from actors.ray_worker_group import RayWorkerGroup
    from gsrl.cluster import check_capacity, connect

    connect(config.ray.address)
    check_capacity(config)
    return RayWorkerGroup(config)


def make_meta_learner(model: EpisodeNetwork, config: Config) -> MetaLearner | RemoteMetaLearner:
    """The learner where `ray.learner` puts it: in the driver, or (Ray backend) in its own actor."""
    if config.run.backend == "ray" and config.ray.learner == "actor":
        from gsrl.cluster import connect
        from learners.remote_learner import RemoteMetaLearner

        connect(config.ray.address)
        return RemoteMetaLearner(model, config)
    return MetaLearner(model, config)


def make_scheduler_env(config: Config | dict | str | None = None, dataset: FewShotDataset | None = None,
                       workers: WorkerGroup | None = None) -> TaskSchedulerEnv:
    """The scheduler environment with its roles: the given workers, or one in-process worker, and a learner
    where the config puts it. `config` may be a Config, a nested dict or a YAML path (None: the defaults)."""
    if not isinstance(config, Config):
        config = config_from_dict(config) if isinstance(config, dict) else load_config(config)
    dataset = dataset if dataset is not None else load_dataset(config)
    workers = workers or LocalWorkerGroup([EpisodeWorker(config, dataset=dataset)])
    learner = make_meta_learner(build_model(dataset, config, seed=config.run.seed).to(resolve_device(config)), config)
    return TaskSchedulerEnv(config, dataset, workers, learner)
