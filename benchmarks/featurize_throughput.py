"""Corpus featurization throughput (molecules/s) with 1, 2, ... Ray tasks, in one run.

Featurizes the first `--molecules` SMILES of a corpus (default: MOSES train) into a fresh sharded
cache once per task count, so every variant does the same work from a cold cache.

    python benchmarks/featurize_throughput.py --molecules 100000 --tasks 1 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ray
from record import provenance, write

from actors.corpus_featurizer import build_corpus
from gsrl.cluster import connect
from gsrl.data.corpora import CorpusCache, read_smiles
from gsrl.data.roots import resolve_data_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="moses/moses_train.csv.gz", help="relative to the data root, or absolute")
    parser.add_argument("--molecules", type=int, default=100_000)
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--name", default="featurize_throughput-moses-cpu2")
    args = parser.parse_args()

    source = Path(args.corpus)
    source = source if source.is_absolute() else resolve_data_root(None) / source
    connect(None)
    variants = {}
    with tempfile.TemporaryDirectory() as scratch:
        subset = Path(scratch) / "subset.smi"
        subset.write_text("\n".join(read_smiles(source)[: args.molecules]) + "\n")
        for tasks in args.tasks:
            cache = CorpusCache(subset, Path(scratch) / f"cache-{tasks}", args.shard_size)
            started = time.perf_counter()
            manifest = build_corpus(cache, parallelism=tasks)
            seconds = time.perf_counter() - started
            variants[f"tasks-{tasks}"] = {"tasks": tasks, "seconds": seconds, "rows": manifest.rows,
                                          "parsed": manifest.parsed, "failed": manifest.failed,
                                          "molecules_per_s": manifest.rows / seconds}
            print(f"{tasks} task(s): {manifest.rows / seconds:.0f} molecules/s", flush=True)
    ray.shutdown()
    first = variants[f"tasks-{args.tasks[0]}"]["molecules_per_s"]
    record = {"benchmark": "featurize_throughput", **provenance(), "corpus": str(source),
              "molecules": args.molecules, "shard_size": args.shard_size, "variants": variants,
              "speedup_over_first": {k: v["molecules_per_s"] / first for k, v in variants.items()}}
    print(json.dumps(record["speedup_over_first"], indent=2))
    print(f"wrote {write(record, args.name)}")


if __name__ == "__main__":
    main()
