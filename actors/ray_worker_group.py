"""RayWorkerGroup: EpisodeWorker replicas as Ray actors, with crash recovery that changes nothing.

Weights go out once per meta-iteration as one object in the object store, tagged with the learner's
version; every result comes back tagged with the version it used, and a result computed on other
weights is treated as a failure. Specs fix all randomness of an episode, so when an actor dies (or a
call fails) the group waits for Ray to restart it, replays what the replica had received since the
last broadcast (the weights, then the phase-1 specs a pending backward needs) and re-runs the call:
the iteration ends with exactly the values an unfaulted run computes. A call that keeps failing on
the same specs is reported with those specs after `ray.max_spec_retries` re-runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import ray
import torch
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
from torch import Tensor

from actors.episode_worker import EpisodeWorker
from actors.worker_group import WorkerGroup, shard_bounds, sum_gradients
from gsrl.config import Config
from gsrl.data.roots import resolve_data_root
from gsrl.data.episodes import EpisodeSpec
from gsrl.meta.messages import EpisodeSummary, PropertyPrediction, Weights
from gsrl.runtime import cache_dir

log = logging.getLogger(__name__)

PLACEMENT_TIMEOUT_S = 120.0
RESTART_TIMEOUT_S = 120.0


class EpisodeFailed(RuntimeError):
    """A worker call failed on the same specs more often than ray.max_spec_retries allows."""

    def __init__(self, method: str, worker: int, specs: list[EpisodeSpec], attempts: int, cause: BaseException):
        described = "; ".join(f"target={s.target} seed={s.seed} support={list(s.support)}" for s in specs) or "none"
        reason = getattr(cause, "cause", None) or cause  # a RayTaskError carries the worker's own exception
        super().__init__(f"EpisodeWorker {worker} failed {attempts} times in {method}() on specs [{described}]: "
                         f"{type(reason).__name__}: {reason}")
        self.method, self.worker, self.specs = method, worker, specs


def worker_config(config: Config) -> Config:
    """The config a worker receives: data root and cache resolved on the driver, so every node reads the
    same paths whatever its environment variables say."""
    data = replace(config.data, root=str(resolve_data_root(config.data.root)), cache_dir=str(cache_dir(config)))
    return replace(config, data=data)


class RayWorkerGroup(WorkerGroup):
    def __init__(self, config: Config):
        self.config = config
        settings = config.ray
        self.max_spec_retries = settings.max_spec_retries
        options: dict[str, Any] = {"num_cpus": settings.worker_cpus, "num_gpus": settings.worker_gpus,
                                   "max_restarts": settings.max_worker_restarts, "max_task_retries": 0}
        self._placement = None
        strategies: list[dict[str, Any]] = [{} for _ in range(config.run.workers)]
        if settings.placement == "spread":
            bundle = {"CPU": settings.worker_cpus, **({"GPU": settings.worker_gpus} if settings.worker_gpus else {})}
            self._placement = placement_group([bundle] * config.run.workers, strategy="STRICT_SPREAD")
            try:
                ray.get(self._placement.ready(), timeout=PLACEMENT_TIMEOUT_S)
            except GetTimeoutError as exc:
                remove_placement_group(self._placement)
                raise RuntimeError(f"ray.placement=spread needs {config.run.workers} nodes with {bundle} free each; "
                                   f"the cluster has {ray.cluster_resources()}") from exc
            strategies = [{"scheduling_strategy": PlacementGroupSchedulingStrategy(self._placement, i)}
                          for i in range(config.run.workers)]
        remote_class = ray.remote(EpisodeWorker)
        shipped = worker_config(config)
        self.actors = [remote_class.options(**options, **strategy).remote(shipped) for strategy in strategies]
        self._weights_ref: ray.ObjectRef | None = None
        self._version = -1
        self._forward_shards: list[tuple[int, int]] = []
        self._forward_specs: list[EpisodeSpec] = []
        self.restarts = 0
        self.healthy = len(self.actors)
        self._lag = 0
        self.locations = ray.get([actor.location.remote() for actor in self.actors])

    @property
    def size(self) -> int:
        return len(self.actors)

    # -- the WorkerGroup protocol ----------------------------------------------------------------
    def broadcast(self, weights: Weights) -> None:
        """Put the weights in the object store once and hand every actor the same reference."""
        self._weights_ref, self._version = ray.put(weights), weights.version
        self._forward_specs, self._forward_shards = [], []
        self._run_all("set_weights", [((self._weights_ref,), []) for _ in self.actors])
        self.healthy = len(self.actors)

    def embed(self, specs: list[EpisodeSpec]) -> Tensor:
        shards = self._shard(specs)
        parts = self._run_all("embed", [((part,), part) for part in shards])
        return torch.cat([p for p in parts if p.numel()])

    def forward(self, specs: list[EpisodeSpec]) -> list[EpisodeSummary]:
        self._forward_shards = shard_bounds(len(specs), self.size)
        self._forward_specs = list(specs)
        parts = self._run_all("forward", [((specs[a:b],), specs[a:b]) for a, b in self._forward_shards])
        summaries = [s for part in parts for s in part]
        self._lag = max((self._version - s.version for s in summaries), default=0)
        return summaries

    def backward(self, grad_embeddings: Tensor, query_weight: float) -> dict[str, Tensor]:
        calls = [((grad_embeddings[a:b], query_weight), self._forward_specs[a:b]) for a, b in self._forward_shards]
        return sum_gradients([g for part in self._run_all("backward", calls) for g in part])

    def evaluate(self, specs: list[EpisodeSpec], batch_size: int) -> list[PropertyPrediction]:
        shards = self._shard(specs)
        parts = self._run_all("evaluate", [((part, batch_size), part) for part in shards])
        return [p for part in parts for p in part]

    def metrics(self) -> dict[str, float]:
        busy = self._run_all("take_busy_seconds", [((), []) for _ in self.actors])
        return {"workers/healthy": float(self.healthy), "workers/restarts": float(self.restarts),
                "workers/weights_lag": float(self._lag), "workers/busy_s_mean": sum(busy) / len(busy),
                "workers/busy_s_max": max(busy)}

    def describe(self) -> list[dict[str, Any]]:
        return self.locations

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        if self._placement is not None:
            remove_placement_group(self._placement)
        self.actors = []

    # -- execution with recovery ------------------------------------------------------------------
    def _shard(self, specs: list[EpisodeSpec]) -> list[list[EpisodeSpec]]:
        return [specs[a:b] for a, b in shard_bounds(len(specs), self.size)]

    def _run_all(self, method: str, calls: list[tuple[tuple, list[EpisodeSpec]]]) -> list:
        """Call `method` on every actor at once (actor i gets calls[i] = (args, specs)); redo failed ones."""
        refs = [getattr(actor, method).remote(*args) for actor, (args, _) in zip(self.actors, calls)]
        return [self._result(i, method, call, ref) for i, (call, ref) in enumerate(zip(calls, refs))]

    def _result(self, worker: int, method: str, call: tuple[tuple, list[EpisodeSpec]], ref: ray.ObjectRef | None):
        args, specs = call
        attempts = 0
        while True:
            try:
                if ref is None:
                    ref = self._replay(worker, method, args)
                result = ray.get(ref)
                self._check_version(method, result)
                return result
            except (RayActorError, RayTaskError, StaleResult) as exc:
                attempts += 1
                log.warning("EpisodeWorker %d failed in %s() (attempt %d): %s", worker, method, attempts,
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                if isinstance(exc, RayActorError):
                    self.restarts += 1
                    self.healthy = max(self.healthy - 1, 0)
                    if not self._restarting(worker):
                        raise RuntimeError(f"EpisodeWorker {worker} died and Ray did not restart it "
                                           f"(ray.max_worker_restarts={self.config.ray.max_worker_restarts})") from exc
                if attempts > self.max_spec_retries:
                    raise EpisodeFailed(method, worker, specs, attempts, exc) from exc
                ref = None

    def _restarting(self, worker: int) -> bool:
        """Whether Ray brings the actor back: wait until it answers again, or learn that it is gone."""
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                self.locations[worker] = ray.get(self.actors[worker].location.remote(), timeout=RESTART_TIMEOUT_S)
                return True
            except ActorUnavailableError:
                time.sleep(0.2)
            except (ActorDiedError, GetTimeoutError):
                return False
        return False

    def _check_version(self, method: str, result) -> None:
        if method == "forward":
            stale = [s.version for s in result if s.version != self._version]
            if stale:
                raise StaleResult(f"results computed on weights version {stale[0]}, expected {self._version}")

    def _replay(self, worker: int, method: str, args: tuple) -> ray.ObjectRef:
        """Bring a (restarted) replica back to this iteration's state, then re-issue the call.

        Actor calls run in submission order, so the replayed weights (and, before a backward, the
        phase-1 specs whose graphs it needs) are in place when the call itself runs."""
        actor = self.actors[worker]
        if method != "set_weights":
            actor.set_weights.remote(self._weights_ref)
        if method == "backward":
            a, b = self._forward_shards[worker]
            actor.forward.remote(self._forward_specs[a:b])
        self.healthy = min(self.healthy + 1, len(self.actors))
        return getattr(actor, method).remote(*args)


class StaleResult(RuntimeError):
    """A worker answered with results computed on another weights version than the current one."""
