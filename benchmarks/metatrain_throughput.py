"""Meta-training throughput by backend: local, and Ray with 1, 2, ... workers, in one run.

Every variant runs the same config (default: SIDER 10-shot, GS-Meta's published settings) for the
same iterations with the same torch threads per worker, so the ratios in one result file compare
like with like. The breakdown says where time goes: pool embedding, adaptation (phase 1), learning
(NT-Xent + phase 2 + outer step), weight sync, and each worker's busy seconds.

    python benchmarks/metatrain_throughput.py --workers 1 2 --iterations 4      # 2-core CPU machine
    python benchmarks/metatrain_throughput.py --workers 1 2 4 --gpu --name metatrain_throughput-gpu
"""

from __future__ import annotations

import argparse
import json
import statistics

from gsrl.config import load_config
from gsrl.jobs.train import MetaTrainingDriver
from gsrl.runtime import apply_threads, load_dataset
from record import provenance, timed_iterations, write


def measure(config, dataset, warmup: int, iterations: int) -> dict:
    driver = MetaTrainingDriver(config, dataset)
    try:
        rows = timed_iterations(driver, warmup, iterations)
        workers = driver.workers.describe()
    finally:
        driver.close()
    mean = {key: statistics.mean(r[key] for r in rows) for key in rows[0]}
    episodes = 2 * config.scheduler.pairs
    return {"backend": config.run.backend, "workers": config.run.workers, "threads_per_worker": config.run.threads,
            "worker_gpus": config.ray.worker_gpus if config.run.backend == "ray" else None,
            "seconds_per_iteration": mean["iteration_s"], "iterations_per_s": 1.0 / mean["iteration_s"],
            "episodes_per_s": episodes / mean["iteration_s"],
            "breakdown_mean_s": {k: v for k, v in mean.items() if k != "iteration_s"},
            "placement": workers, "iterations": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default="configs/gsmeta/sider-10shot.yaml")
    parser.add_argument("-o", "--override", action="append", default=[])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to measure")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (and for local)")
    parser.add_argument("--gpu", action="store_true", help="workers share one GPU (worker_gpus = 1 / workers)")
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--name", default="metatrain_throughput-cpu2")
    args = parser.parse_args()

    base = [*args.override, f"run.threads={args.threads}"]
    variants = [("local", [*base, "run.backend=local", "run.workers=1"])]
    for workers in args.workers:
        gpu = [f"ray.worker_gpus={1.0 / workers}", "run.device=cuda"] if args.gpu else ["run.device=cpu"]
        variants.append((f"ray-{workers}", [*base, "run.backend=ray", f"run.workers={workers}",
                                            f"ray.worker_cpus={1 if args.gpu else args.threads}", *gpu]))
    if args.gpu:
        variants[0][1].append("run.device=cuda")

    results = {}
    for label, overrides in variants:
        config = load_config(args.config, overrides)
        apply_threads(config)
        results[label] = measure(config, load_dataset(config), args.warmup, args.iterations)
        print(f"{label}: {results[label]['seconds_per_iteration']:.2f} s/iteration", flush=True)

    local = results["local"]["seconds_per_iteration"]
    ratios = {f"{label}_time_over_local": r["seconds_per_iteration"] / local
              for label, r in results.items() if label != "local"}
    if "ray-1" in results:
        ratios.update({f"{label}_speedup_over_ray-1": results["ray-1"]["seconds_per_iteration"] /
                       r["seconds_per_iteration"] for label, r in results.items()
                       if label.startswith("ray-") and label != "ray-1"})
    record = {"benchmark": "metatrain_throughput", **provenance(), "config": args.config, "overrides": args.override,
              "iterations_measured": args.iterations, "warmup": args.warmup, "ratios": ratios, "variants": results}
    out = write(record, args.name)
    print(json.dumps(ratios, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
