"""Graph-autoencoder speed: link-prediction epochs/s, the sweep's wall time on 1 vs 2 Ray CPUs, and the
molecular VGAE's training molecules/s with 1 and 2 Ray Train workers.

    python benchmarks/gae_throughput.py                 # all three parts, CPU
    python benchmarks/gae_throughput.py --gpu --parts links molecules --molecule-workers 1 --name gae_throughput-gpu

(On one GPU, use one molecular worker: NCCL refuses two ranks on the same device.)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ray
from record import provenance, write
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gsrl.config import RunPlace, load_config
from gsrl.gae.link.config import LinkPredictionConfig, LinkSweepConfig
from gsrl.gae.link.train import train_link_predictor
from gsrl.gae.molecular.config import MolecularVGAEConfig
from gsrl.jobs.gae import run_sweep
from gsrl.jobs.molecular_vgae import run_molecular_vgae

LINK_JOBS = [("cora", "dense"), ("citeseer", "dense"), ("amazon-photo", "sampled"), ("amazon-computers", "sampled")]


def link_speed(scratch: Path, epochs: int, device: str, datasets: list[str]) -> dict:
    rows = {}
    for dataset, loss in (job for job in LINK_JOBS if job[0] in datasets):
        for model in ("gae", "vgae"):
            config = LinkPredictionConfig(dataset=dataset, model=model, loss=loss, epochs=epochs,
                                          checkpoint_every=epochs, run=RunPlace(device=device, threads=1))
            result = train_link_predictor(config, scratch / f"{dataset}-{model}")
            rows[f"{dataset}-{model}-gcn"] = {"loss": loss, "epochs": epochs, "epochs_per_s": result.epochs_per_s}
            print(f"{dataset} {model}: {result.epochs_per_s:.1f} epochs/s", flush=True)
    return rows


def sweep_wall_time(scratch: Path, cpus: list[int], seeds: int) -> dict:
    """The same small sweep (Cora, GAE and VGAE, `seeds` seeds, 200 epochs) on Ray clusters of 1 and 2 CPUs."""
    rows = {}
    for count in cpus:
        sweep = load_config("configs/gae/sweep.yaml", ["datasets=[cora]", "models=[{model: gae, conv: gcn}, "
                            "{model: vgae, conv: gcn}]", f"seeds={list(range(seeds))}", "job.run.device=cpu",
                            f"run.output_dir={scratch}", f"name=cpus-{count}"], schema=LinkSweepConfig)
        ray.init(num_cpus=count, include_dashboard=False)
        started = time.perf_counter()
        run_sweep(sweep)
        rows[f"ray-cpus-{count}"] = {"cpus": count, "jobs": 2 * seeds, "wall_s": time.perf_counter() - started}
        ray.shutdown()
        print(f"sweep on {count} CPU(s): {rows[f'ray-cpus-{count}']['wall_s']:.1f} s", flush=True)
    return rows


def molecule_speed(scratch: Path, workers: list[int], gpu: bool) -> dict:
    rows = {}
    for count in workers:
        config = load_config("configs/gae/molecules-zinc.yaml", [
            "epochs=1", "corpus.shard_size=10000", "corpus.max_shards=2", f"run.workers={count}", "run.threads=1",
            "samples=100", "check_samples=50", "optimisation.starts=20", "optimisation.steps=5",
            f"ray.worker_gpus={1.0 if gpu else 0.0}", f"run.output_dir={scratch}", f"name=workers-{count}"],
            schema=MolecularVGAEConfig)
        run = run_molecular_vgae(config)
        events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
        events.Reload()
        rate = events.Scalars("vgae/molecules_per_s")[-1].value
        rows[f"workers-{count}"] = {"workers": count, "molecules_per_s": rate}
        print(f"molecular VGAE, {count} worker(s): {rate:.0f} molecules/s", flush=True)
    ray.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["links", "sweep", "molecules"],
                        choices=["links", "sweep", "molecules"])
    parser.add_argument("--link-epochs", type=int, default=50)
    parser.add_argument("--link-datasets", nargs="+", default=[d for d, _ in LINK_JOBS],
                        choices=[d for d, _ in LINK_JOBS])
    parser.add_argument("--sweep-seeds", type=int, default=4)
    parser.add_argument("--molecule-workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--name", default="gae_throughput-cpu2")
    args = parser.parse_args()
    record = {"benchmark": "gae_throughput", **provenance(), "parts": {}}
    with tempfile.TemporaryDirectory() as scratch:
        if "links" in args.parts:
            record["parts"]["links"] = link_speed(Path(scratch), args.link_epochs, "cuda" if args.gpu else "cpu",
                                                  args.link_datasets)
        if "sweep" in args.parts:
            rows = sweep_wall_time(Path(scratch), [1, 2], args.sweep_seeds)
            rows["speedup_2_over_1"] = rows["ray-cpus-1"]["wall_s"] / rows["ray-cpus-2"]["wall_s"]
            record["parts"]["sweep"] = rows
        if "molecules" in args.parts:
            rows = molecule_speed(Path(scratch), args.molecule_workers, args.gpu)
            if {"workers-1", "workers-2"} <= rows.keys():
                rows["speedup_2_over_1"] = rows["workers-2"]["molecules_per_s"] / rows["workers-1"]["molecules_per_s"]
            record["parts"]["molecules"] = rows
    print(json.dumps(record["parts"], indent=2))
    print(f"wrote {write(record, args.name)}")


if __name__ == "__main__":
    main()
