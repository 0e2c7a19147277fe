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
import statistics
import sys
import time
from pathlib import Path

from gsrl.config import load_config
from gsrl.jobs.train import MetaTrainingDriver
from gsrl.meta.evaluation import evaluation_specs, summarize
from gsrl.runtime import apply_threads, load_dataset
from record import peak_rss_gb, provenance, timed_iterations, write


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
    driver = MetaTrainingDriver(config, dataset)
    rows = timed_iterations(driver, args.warmup, args.iterations)
    env = driver.env
    training_peak = peak_rss_gb()

    evaluations = []
    for index in range(args.evaluations):
        specs = evaluation_specs(env.sampler, env.sampler.test_properties, config.episode.test_auxiliary,
                                 config.run.seed, index, draws=1)
        started = time.perf_counter()
        result = summarize(driver.workers.evaluate(specs, config.eval.batch_size), env.iteration)
        evaluations.append({"seconds": time.perf_counter() - started, "auc_mean": result.mean,
                            "query_molecules": sum(len(s.query) for s in specs)})
        print(f"evaluation {index}: {evaluations[-1]['seconds']:.1f}s", file=sys.stderr, flush=True)

    mean = {key: statistics.mean(r[key] for r in rows) for key in rows[0]}
    record = {
        "benchmark": "metatrain_speed",
        **provenance(),
        "config": args.config, "overrides": args.override,
        "iterations_measured": len(rows), "warmup": args.warmup,
        "seconds_per_iteration": mean["iteration_s"],
        "breakdown_mean_s": {k: v for k, v in mean.items() if k.endswith("_s") and k != "iteration_s"},
        "iterations": rows,
        "seconds_per_evaluation": statistics.mean(e["seconds"] for e in evaluations) if evaluations else None,
        "evaluations": evaluations,
        "peak_rss_gb_training": training_peak,
        "peak_rss_gb_total": peak_rss_gb(),
    }
    out = write(record, args.name or f"metatrain_speed-{Path(args.config).stem}")
    print(json.dumps({k: record[k] for k in ("seconds_per_iteration", "breakdown_mean_s", "seconds_per_evaluation",
                                             "peak_rss_gb_training", "peak_rss_gb_total")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
