"""Accelerator check: the figures a GPU run of gsrl is judged by, from one prepared script.

On one device, with the local backend, it measures:
- seconds per meta-iteration at the SIDER 10-shot published settings, fp32 and bf16 (`run.precision`),
  with the breakdown;
- seconds per SIDER evaluation (one support draw per test property), in each precision;
- attribute-masking pretraining molecules/s (the published 5 x 300 GIN, batch 256), fp32 and bf16.

It reads only the project's own featurized caches, so the machine it runs on needs torch and
torch-geometric, not RDKit or Ray. `--prepare DIR` (here, with RDKit) writes those caches, and the two
small source files whose checksums key them, into DIR, which then travels with the working tree.
bf16 is measured where `run.precision=bf16` is allowed (CUDA, or a CPU with bf16 instructions) and
named as not measured, with the reason, elsewhere. Not measured yet: the molecular VGAE (its
molecule vocabulary imports RDKit).

    python benchmarks/gpu_check.py --prepare gpu-check-data                  # here, once (ignored by git)
    python benchmarks/gpu_check.py --data gpu-check-data --device cuda      # on the accelerator
    python benchmarks/gpu_check.py --prepare DIR --tiny && \\
        python benchmarks/gpu_check.py --data DIR --device cpu --tiny --out result.json   # CI
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch

from gsrl.config import load_config
from gsrl.data.corpora import CorpusCache, featurize_shard, load_shards, read_smiles
from gsrl.data.roots import resolve_data_root
from gsrl.jobs.train import MetaTrainingDriver
from gsrl.models.encoder import MoleculeEncoder
from gsrl.precision import autocast, bf16_unsupported_reason
from gsrl.pretraining.registry import make_strategy
from gsrl.runtime import load_dataset
from record import RESULTS, provenance, timed_iterations

CONFIG = "configs/gsmeta/sider-10shot.yaml"
SOURCES = ("moleculenet/sider.csv", "moleculenet/fewshot_tasks.json")  # what the SIDER cache's key reads
CORPUS = "moses/moses_train.csv.gz"
TINY = ["encoder.num_layers=2", "encoder.emb_dim=16", "relation.edge_hidden_dim=4", "episode.shots=2",
        "episode.train_queries=4", "episode.eval_context_queries=4", "scheduler.pool_size=3", "scheduler.pairs=2",
        "eval.batch_size=256"]


def meta_config(data: Path, device: str, tiny: bool, precision: str = "fp32"):
    return load_config(CONFIG, [f"data.root={data / 'data'}", f"data.cache_dir={data / 'cache'}",
                                f"run.device={device}", f"run.precision={precision}", "run.progress=false",
                                "eval.progress=false", *(TINY if tiny else [])])


def prepare(data: Path, tiny: bool) -> None:
    """Copy the SIDER source files, featurize SIDER and the corpus's first molecules into `data` (needs RDKit)."""
    root = resolve_data_root(None)
    for name in SOURCES:
        (data / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, data / "data" / name)
    load_dataset(meta_config(data, "cpu", tiny))
    molecules = 256 if tiny else 10_000
    cache = CorpusCache(root / CORPUS, data / "cache", shard_size=molecules)
    featurize_shard(cache, 0, read_smiles(cache.source)[:molecules], 0)
    (data / "corpus.json").write_text(json.dumps({"shards": str(cache.directory.relative_to(data))}))
    print(f"prepared {data}: the SIDER cache and {molecules} corpus molecules")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def meta_training(data: Path, device: str, tiny: bool, iterations: int, precision: str) -> dict:
    config = meta_config(data, device, tiny, precision)
    driver = MetaTrainingDriver(config)
    rows = timed_iterations(driver, warmup=1, iterations=iterations)
    started = time.perf_counter()
    result = driver.evaluate(0, draws=1)
    evaluation_seconds = time.perf_counter() - started
    driver.close()
    return {"config": CONFIG, "tiny": tiny, "iterations": rows,
            "seconds_per_iteration_median": statistics.median(r["iteration_s"] for r in rows),
            "evaluation_seconds": evaluation_seconds, "evaluation_auc_mean": result.mean,
            "test_properties": len(result.per_property)}


def pretraining(data: Path, device: torch.device, tiny: bool, steps: int, precision: str) -> dict:
    corpus = load_shards(data / json.loads((data / "corpus.json").read_text())["shards"], [0])
    layers, width, batch_size = (2, 16, 32) if tiny else (5, 300, 256)
    torch.manual_seed(0)
    encoder = MoleculeEncoder("gin", layers, width, 0.0)
    strategy = make_strategy("attribute_masking", encoder).to(device)
    optimizer = torch.optim.Adam(strategy.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    seconds = []
    for step in range(steps + 1):  # the first step warms up
        started = time.perf_counter()
        ids = rng.integers(0, len(corpus), batch_size)
        batch = Batch.from_data_list([strategy.prepare(corpus.molecule(int(i)), rng) for i in ids]).to(device)
        with autocast(device, precision):
            loss, _ = strategy(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        seconds.append(time.perf_counter() - started)
    measured = seconds[1:]
    return {"strategy": "attribute_masking", "encoder": f"gin {layers} x {width}", "batch_size": batch_size,
            "steps": steps, "molecules_per_s": batch_size * len(measured) / sum(measured)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", type=Path, metavar="DIR", help="write the caches the check reads, then stop")
    parser.add_argument("--data", type=Path, metavar="DIR", help="a folder written by --prepare")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny network and few steps (CI)")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--pretrain-steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: benchmarks/results/)")
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare, args.tiny)
        return
    if args.data is None:
        sys.exit("give --data DIR (a folder written by --prepare)")
    device = torch.device(args.device)
    iterations, steps = (2, 3) if args.tiny else (args.iterations, args.pretrain_steps)
    started = time.perf_counter()
    record = {"benchmark": "gpu_check", **provenance(), "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "not_measured": {"molecular_vgae": "its molecule vocabulary imports RDKit"}}
    bf16_refused = bf16_unsupported_reason(device)
    for precision in ("fp32", "bf16"):
        if precision == "bf16" and bf16_refused:
            record["not_measured"]["bf16"] = bf16_refused
            continue
        record[f"meta_training_{precision}"] = meta_training(args.data, args.device, args.tiny, iterations, precision)
        record[f"pretraining_{precision}"] = pretraining(args.data, device, args.tiny, steps, precision)
    record["wall_seconds"] = time.perf_counter() - started
    out = args.out or RESULTS / f"gpu_check-{record['device_name'].replace(' ', '_')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(json.dumps({k: record[k] for k in ("device_name", "wall_seconds")}), out)


if __name__ == "__main__":
    main()
