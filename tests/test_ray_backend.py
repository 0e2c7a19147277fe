"""The Ray backend computes exactly what the local backend computes, and survives crashed workers.

All tests of this module share one embedded Ray cluster (started the way `gsrl train` starts it).
Workers and the in-process reference run with one torch thread each, so equal operations give
equal bits.
"""

from __future__ import annotations

import os
import signal

import psutil
import pytest
import ray
import torch

from actors.episode_worker import EpisodeWorker
from actors.ray_worker_group import EpisodeFailed, RayWorkerGroup
from actors.worker_group import LocalWorkerGroup
from envs.task_scheduler import TaskSchedulerEnv
from gsrl.cluster import ClusterTooSmall, connect
from gsrl.data.episodes import EpisodeSampler, EpisodeSpec, derive_rng
from gsrl.jobs.assembly import make_scheduler_env, make_worker_group
from gsrl.runtime import build_model, load_dataset
from learners.meta_learner import MetaLearner

from .conftest import LOOPBACK_ADDRESSES

ITERATIONS = 5
RAY = ("run.backend=ray", "run.workers=2", "run.threads=1")


@pytest.fixture(scope="module")
def ray_cluster(tiny_config):
    connect(tiny_config(*RAY).ray.address)
    yield
    ray.shutdown()


@pytest.fixture
def one_thread():
    """Equal bits need equal thread counts; restore the suite's own count afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _pool_specs(config, dataset, iteration: int) -> list[EpisodeSpec]:
    sampler = EpisodeSampler.for_dataset(dataset, config.episode.shots, config.episode.train_queries)
    pool = sampler.candidate_pool(3, None, derive_rng(0, iteration))
    return [pair[0] for pair in pool.pairs] + [pair[1] for pair in pool.pairs]


def _run(env: TaskSchedulerEnv, iterations: int = ITERATIONS) -> tuple[list[tuple[float, float]], dict]:
    """Step with a fixed action; (reward, query loss) per step and the final learner state."""
    env.reset(seed=0)
    trace = []
    for i in range(iterations):
        _, reward, _, _, info = env.step([i % 3, (i + 1) % 3])
        trace.append((reward, info["outer"]["query_loss"]))
    return trace, {k: v.clone() for k, v in env.learner.state_dict()["model"].items()}


@pytest.fixture(scope="module")
def local_reference(tiny_config):
    """The in-process, one-worker run every Ray variant must reproduce."""
    threads = torch.get_num_threads()
    config = tiny_config("run.threads=1")
    dataset = load_dataset(config)
    env = make_scheduler_env(config, dataset, LocalWorkerGroup([EpisodeWorker(config, dataset=dataset)]))
    result = _run(env)
    torch.set_num_threads(threads)
    return result


def test_embedded_cluster_listens_on_loopback_only(ray_cluster):
    ray_processes = [p for p in psutil.process_iter(["name", "cmdline"])
                     if any("ray" in part for part in (p.info["cmdline"] or [])[:3])]
    listening = [(p.info["name"], c.laddr.ip, c.laddr.port) for p in ray_processes
                 for c in _listening(p)]
    assert listening, "found no Ray sockets to check"
    exposed = [entry for entry in listening if entry[1] not in LOOPBACK_ADDRESSES]
    assert not exposed, exposed


def _listening(process: psutil.Process) -> list:
    try:
        return [c for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def test_two_ray_workers_give_the_local_meta_gradient_losses_and_reward(ray_cluster, tiny_config, one_thread):
    config = tiny_config(*RAY)
    dataset = load_dataset(config)
    specs = _pool_specs(config, dataset, iteration=7)
    outcomes = []
    for group in (LocalWorkerGroup([EpisodeWorker(config, dataset=dataset)]), RayWorkerGroup(config)):
        learner = MetaLearner(build_model(dataset, config, seed=0), config)
        group.broadcast(learner.weights())
        summaries = group.forward(specs)
        contrastive, grad_g = learner.contrastive_gradient(summaries)
        grads = group.backward(grad_g, 1.0 / len(specs))
        outcomes.append(([s.query_loss for s in summaries], contrastive, grads))
        group.close()
    (local_losses, local_reward, local_grads), (ray_losses, ray_reward, ray_grads) = outcomes
    assert max(abs(a - b) for a, b in zip(local_losses, ray_losses)) <= 1e-5
    assert abs(local_reward - ray_reward) <= 1e-5
    assert max(float((local_grads[k] - ray_grads[k]).abs().max()) for k in local_grads) <= 1e-5
    assert any(float(g.abs().max()) > 1e-4 for g in ray_grads.values())  # a real, non-zero gradient


def test_five_ray_iterations_end_with_the_local_parameters(ray_cluster, tiny_config, local_reference):
    config = tiny_config(*RAY)
    dataset = load_dataset(config)
    env = make_scheduler_env(config, dataset, RayWorkerGroup(config))
    trace, state = _run(env)
    env.close()
    reference_trace, reference_state = local_reference
    assert max(abs(a - b) for pair, ref in zip(trace, reference_trace) for a, b in zip(pair, ref)) <= 1e-5
    assert max(float((state[k].double() - reference_state[k].double()).abs().max()) for k in state) <= 1e-5


@pytest.mark.parametrize("algorithm", [("meta.algorithm=maml",), ("meta.algorithm=maml", "meta.first_order=true"),
                                       ("meta.algorithm=reptile", "meta.inner_steps=3"),
                                       ("meta.algorithm=protonet",)], ids=["maml", "fomaml", "reptile", "protonet"])
def test_each_baseline_runs_on_two_ray_workers_as_locally(ray_cluster, tiny_config, one_thread, algorithm):
    results = []
    for backend in (("run.threads=1",), RAY):
        config = tiny_config(*algorithm, *backend)
        dataset = load_dataset(config)
        workers = LocalWorkerGroup([EpisodeWorker(config, dataset=dataset)]) if config.run.backend == "local" \
            else RayWorkerGroup(config)
        env = make_scheduler_env(config, dataset, workers)
        results.append(_run(env, iterations=3))
        env.close()
    (local_trace, local_state), (ray_trace, ray_state) = results
    assert max(abs(a - b) for pair, ref in zip(ray_trace, local_trace) for a, b in zip(pair, ref)) <= 1e-5
    assert max(float((ray_state[k].double() - local_state[k].double()).abs().max()) for k in ray_state) <= 1e-5
    assert any(not torch.equal(local_state[k], v) for k, v in build_model(dataset, config, seed=0).state_dict().items())


class KillingWorkerGroup(RayWorkerGroup):
    """Kills worker 1 with SIGKILL between phase 1 and phase 2 of one meta-iteration."""

    kill_at_backward = 3

    def __init__(self, config):
        super().__init__(config)
        self.backward_calls = 0

    def backward(self, grad_embeddings, query_weight):
        self.backward_calls += 1
        if self.backward_calls == self.kill_at_backward:
            os.kill(self.locations[1]["pid"], signal.SIGKILL)
        return super().backward(grad_embeddings, query_weight)


def test_killed_worker_is_restarted_and_the_run_ends_as_unfaulted(ray_cluster, tiny_config,
                                                                   local_reference):
    config = tiny_config(*RAY)
    dataset = load_dataset(config)
    group = KillingWorkerGroup(config)
    first_pid = group.locations[1]["pid"]
    env = make_scheduler_env(config, dataset, group)
    trace, state = _run(env)
    metrics = group.metrics()
    env.close()
    assert group.locations[1]["pid"] != first_pid  # a new process took over
    assert metrics["workers/restarts"] >= 1 and metrics["workers/healthy"] == 2
    reference_trace, reference_state = local_reference
    assert trace == reference_trace
    assert all(torch.equal(state[k], reference_state[k]) for k in state)


def test_a_spec_that_keeps_failing_is_reported_with_the_spec(ray_cluster, tiny_config):
    config = tiny_config(*RAY, "ray.max_spec_retries=1")
    dataset = load_dataset(config)
    good = _pool_specs(config, dataset, iteration=1)[0]
    broken = EpisodeSpec(good.dataset, good.target, good.support, (10 ** 7,) + good.query[1:], good.auxiliary,
                         good.context, seed=4242)  # a molecule id past the end of the dataset
    group = RayWorkerGroup(config)
    group.broadcast(MetaLearner(build_model(dataset, config, seed=0), config).weights())
    with pytest.raises(EpisodeFailed, match=r"failed 2 times in forward\(\).*seed=4242") as failure:
        group.forward([good, broken])
    assert failure.value.specs == [broken] and failure.value.worker == 1
    group.close()


def test_learner_actor_gives_the_driver_learner_result(ray_cluster, tiny_config, local_reference):
    config = tiny_config(*RAY, "ray.learner=actor", "ray.learner_cpus=0")
    dataset = load_dataset(config)
    env = make_scheduler_env(config, dataset, RayWorkerGroup(config))
    trace, state = _run(env)
    env.close()
    reference_trace, reference_state = local_reference
    assert trace == reference_trace
    assert all(torch.equal(state[k], reference_state[k]) for k in state)


def test_workers_the_embedded_cluster_cannot_place_fail_at_once_naming_the_keys(ray_cluster, tiny_config):
    """Ray would queue actors asking for a GPU the cluster lacks forever; the run stops before creating any."""
    missing_gpus = ray.cluster_resources().get("GPU", 0.0) + 1
    config = tiny_config(*RAY, "run.workers=1", f"ray.worker_gpus={missing_gpus}")
    with pytest.raises(ClusterTooSmall, match=r"run\.workers × ray\.worker_cpus/worker_gpus .*GPU: needs"):
        make_worker_group(config, dataset=None)
