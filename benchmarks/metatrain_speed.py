"""Seconds per meta-iteration (with its breakdown), seconds per evaluation and peak memory.

Runs the real training loop pieces (candidate pool, policy, environment step, evaluation) on a
config (default: SIDER 10-shot with GS-Meta's published settings: second order, all parameters
adapted, 5 pairs, pool of 10 properties) and writes a JSON record with the command, machine,
versions and git commit to benchmarks/results/.

    python benchmarks/metatrain_speed.py --iterations 6 --warmup 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from envs.task_scheduler import TaskSchedulerEnv
from gsrl.checkpoint import git_commit
from gsrl.config import load_config
from gsrl.data.episodes import derive_rng
from gsrl.meta.evaluation import evaluation_specs, summarize
from gsrl.runtime import apply_threads, load_dataset
from gsrl.scheduling.policies import make_policy
from learners.scheduler_learner import SchedulerLearner

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux reports KiB


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default="configs/gsmeta/sider-10shot.yaml")
    parser.add_argument("-o", "--override", action="append", default=[])
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--evaluations", type=int, default=1)
    parser.add_argument("--name", default=None, help="result file stem (default: derived from the config)")
    args = parser.parse_args()

    config = load_config(args.config, args.override)
    apply_threads(config)
    dataset = load_dataset(config)
    env = TaskSchedulerEnv(config, dataset=dataset)
    policy = make_policy(config.scheduler, config.encoder.emb_dim)
    policy_learner = SchedulerLearner(policy, config.scheduler)
    observation, _ = env.reset(seed=config.run.seed)

    rows = []
    for iteration in range(args.warmup + args.iterations):
        started = time.perf_counter()
        decision = policy.act(observation, derive_rng(config.run.seed, iteration, 2), iteration)
        observation, reward, _, _, info = env.step(decision.pairs)
        policy_started = time.perf_counter()
        policy_learner.update(decision.log_prob, reward)
        ended = time.perf_counter()
        if iteration >= args.warmup:
            rows.append({**env.last_timings, "policy_s": ended - policy_started, "iteration_s": ended - started})
        print(f"iteration {iteration}: {ended - started:.2f}s {env.last_timings}", file=sys.stderr, flush=True)
    training_peak = peak_rss_gb()

    evaluations = []
    for index in range(args.evaluations):
        specs = evaluation_specs(env.sampler, env.sampler.test_properties, config.episode.test_auxiliary,
                                 config.run.seed, index, draws=1)
        started = time.perf_counter()
        result = summarize(env.workers.evaluate(specs, config.eval.batch_size), env.iteration)
        evaluations.append({"seconds": time.perf_counter() - started, "auc_mean": result.mean,
                            "query_molecules": sum(len(s.query) for s in specs)})
        print(f"evaluation {index}: {evaluations[-1]['seconds']:.1f}s", file=sys.stderr, flush=True)

    mean = {key: statistics.mean(r[key] for r in rows) for key in rows[0]}
    record = {
        "benchmark": "metatrain_speed",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": args.config, "overrides": args.override,
        "git_commit": git_commit(),
        "machine": machine(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "iterations_measured": len(rows), "warmup": args.warmup,
        "seconds_per_iteration": mean["iteration_s"],
        "breakdown_mean_s": {k: v for k, v in mean.items() if k != "iteration_s"},
        "iterations": rows,
        "seconds_per_evaluation": statistics.mean(e["seconds"] for e in evaluations) if evaluations else None,
        "evaluations": evaluations,
        "peak_rss_gb_training": training_peak,
        "peak_rss_gb_total": peak_rss_gb(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.name or f"metatrain_speed-{Path(args.config).stem}"
    out = RESULTS / f"{stem}.json"
    out.write_text(json.dumps(record, indent=2))
    print(json.dumps({k: record[k] for k in ("seconds_per_iteration", "breakdown_mean_s", "seconds_per_evaluation",
                                             "peak_rss_gb_training", "peak_rss_gb_total")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
