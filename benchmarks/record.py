"""What every benchmark records: the machine, versions, commit, and the timed meta-iteration loop."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from envs.task_scheduler import TaskSchedulerEnv
from gsrl.checkpoint import git_commit
from gsrl.data.episodes import derive_rng
from gsrl.scheduling.policies import make_policy
from learners.scheduler_learner import SchedulerLearner

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_gb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def machine() -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def provenance() -> dict:
    """Command, commit, machine and versions, the header of every result file."""
    import ray

    return {"command": " ".join([Path(sys.executable).name, *sys.argv]), "git_commit": git_commit(),
            "machine": machine(),
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__}}


def timed_iterations(env: TaskSchedulerEnv, warmup: int, iterations: int) -> list[dict[str, float]]:
    """Run warmup + iterations meta-iterations as the trainer does (policy, env step, policy update);
    per measured iteration: the environment's timing breakdown, the policy update and the total."""
    config = env.config
    policy = make_policy(config.scheduler, config.encoder.emb_dim, seed=config.run.seed)
    policy_learner = SchedulerLearner(policy, config.scheduler)
    observation, _ = env.reset(seed=config.run.seed)
    rows = []
    for iteration in range(warmup + iterations):
        started = time.perf_counter()
        decision = policy.act(observation, derive_rng(config.run.seed, iteration, 2), iteration)
        observation, reward, _, _, _ = env.step(decision.pairs)
        policy_started = time.perf_counter()
        policy_learner.update(decision.log_prob, reward)
        ended = time.perf_counter()
        row = {**env.last_timings, "policy_s": ended - policy_started, "iteration_s": ended - started,
               **env.workers.metrics()}
        if iteration >= warmup:
            rows.append(row)
        print(f"iteration {iteration}: {row['iteration_s']:.2f}s", file=sys.stderr, flush=True)
    return rows


def write(record: dict, stem: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{stem}.json"
    out.write_text(json.dumps(record, indent=2))
    return out
