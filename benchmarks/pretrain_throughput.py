"""Pretraining throughput (molecules/s) of the Ray Train job with 1, 2, ... data-parallel workers.

Each variant pretrains one epoch (attribute masking by default, the published 5 x 300 GIN) on the
first shards of a corpus (default: MOSES train) from scratch; the rate is what the job itself logs
(`pretrain/molecules_per_s`: molecules through forward, backward and the gradient all-reduce).

    python benchmarks/pretrain_throughput.py --shards 2 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import tempfile

import ray
from record import provenance, write
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gsrl.config import load_config
from gsrl.jobs.pretrain import run_pretraining
from gsrl.pretraining.config import PretrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default="configs/pretrain/attribute_masking.yaml")
    parser.add_argument("-o", "--override", action="append", default=[])
    parser.add_argument("--shards", type=int, default=2, help="corpus shards of 10,000 molecules (>= workers)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--name", default="pretrain_throughput-moses-cpu2")
    args = parser.parse_args()

    variants = {}
    with tempfile.TemporaryDirectory() as scratch:
        for workers in args.workers:
            config = load_config(args.config, [*args.override, "epochs=1", f"run.workers={workers}", "run.threads=1",
                                               "corpus.shard_size=10000", f"corpus.max_shards={args.shards}",
                                               f"run.output_dir={scratch}", f"name=workers-{workers}"],
                                 schema=PretrainConfig)
            run = run_pretraining(config)
            events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
            events.Reload()
            rate = events.Scalars("pretrain/molecules_per_s")[-1].value
            variants[f"workers-{workers}"] = {"workers": workers, "molecules_per_s": rate,
                                              "loss": events.Scalars("pretrain/loss")[-1].value}
            print(f"{workers} worker(s): {rate:.0f} molecules/s", flush=True)
    ray.shutdown()
    first = variants[f"workers-{args.workers[0]}"]["molecules_per_s"]
    record = {"benchmark": "pretrain_throughput", **provenance(), "config": args.config, "overrides": args.override,
              "shards": args.shards, "variants": variants,
              "speedup_over_first": {k: v["molecules_per_s"] / first for k, v in variants.items()}}
    print(json.dumps(record["speedup_over_first"], indent=2))
    print(f"wrote {write(record, args.name)}")


if __name__ == "__main__":
    main()
