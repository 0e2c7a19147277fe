"""Where a meta-iteration's time goes, by operator: the table every speed change is judged against.

Runs the trainer's own meta-iteration (`MetaTrainingDriver.train_step`) under torch.profiler after
warm-up, and writes each operator's self CPU time (its share of the total, calls, and a family:
matrix products, or elementwise and memory work, or other) with the command, machine, versions and
commit. Self time counts an operator's own work, not the operators it calls, so the shares add up.

    python benchmarks/metatrain_profile.py --iterations 2 --name metatrain_profile-sider-10shot-cpu2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

from gsrl.config import load_config
from gsrl.jobs.train import MetaTrainingDriver
from gsrl.runtime import apply_threads, load_dataset
from record import provenance, write

MATRIX = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear")
ELEMENTWISE_AND_MEMORY = ("aten::mul", "aten::add", "aten::add_", "aten::sub", "aten::div", "aten::fill_",
                          "aten::zero_", "aten::copy_", "aten::sum", "aten::clamp_min", "aten::exp",
                          "aten::abs", "aten::where", "aten::leaky_relu", "aten::leaky_relu_backward",
                          "aten::scatter_add_", "aten::index_select", "aten::index", "aten::cat",
                          "aten::native_batch_norm", "aten::native_batch_norm_backward", "aten::sigmoid",
                          "aten::sigmoid_backward", "aten::mul_", "aten::threshold_backward", "aten::rsqrt",
                          "aten::pow", "aten::sqrt", "aten::neg", "aten::empty", "aten::empty_strided",
                          "aten::zeros", "aten::ones", "aten::clone", "aten::contiguous", "aten::sgn")


def family(name: str) -> str:
    if name in MATRIX:
        return "matrix products"
    if name in ELEMENTWISE_AND_MEMORY:
        return "elementwise and memory"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default="configs/gsmeta/sider-10shot.yaml")
    parser.add_argument("-o", "--override", action="append", default=[])
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--top", type=int, default=40, help="operators listed one by one")
    parser.add_argument("--name", default=None, help="result file stem (default: derived from the config)")
    args = parser.parse_args()

    config = load_config(args.config, args.override)
    apply_threads(config)
    driver = MetaTrainingDriver(config, load_dataset(config))
    driver.reset()
    for _ in range(args.warmup):
        driver.train_step()
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(args.iterations):
            driver.train_step()
    wall_seconds = (time.perf_counter() - started) / args.iterations
    driver.close()

    events = [e for e in profiler.key_averages() if e.self_cpu_time_total > 0]
    total_us = sum(e.self_cpu_time_total for e in events)
    operators = sorted(({"operator": e.key, "family": family(e.key), "calls": e.count // args.iterations,
                         "self_seconds_per_iteration": e.self_cpu_time_total / 1e6 / args.iterations,
                         "share": e.self_cpu_time_total / total_us} for e in events),
                       key=lambda row: -row["share"])
    families: dict[str, float] = defaultdict(float)
    for row in operators:
        families[row["family"]] += row["share"]
    record = {
        "benchmark": "metatrain_profile", **provenance(), "config": args.config, "overrides": args.override,
        "iterations_profiled": args.iterations, "warmup": args.warmup,
        "wall_seconds_per_iteration_profiled": wall_seconds,
        "note": "self CPU time summed over threads; the profiler's own overhead is in the wall time",
        "families": dict(sorted(families.items(), key=lambda item: -item[1])),
        "operators": operators[:args.top],
    }
    out = write(record, args.name or f"metatrain_profile-{Path(args.config).stem}")
    for row in operators[:15]:
        print(f"{row['share']:6.1%}  {row['self_seconds_per_iteration']:7.3f}s  {row['calls']:6d}  {row['operator']}",
              file=sys.stderr)
    print(json.dumps(record["families"], indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
