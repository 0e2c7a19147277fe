"""The fine-tuning benchmark: datasets × encoders × seeds as Ray tasks on scaffold splits, then one table."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import ray
import torch

from gsrl.data.roots import resolve_data_root
from gsrl.data.property_datasets import load_property_dataset
from gsrl.data.scaffold import ScaffoldSplit, scaffold_split
from gsrl.finetune.benchmark import (dataset_summary, format_markdown, resolved_encoders, data_digest,
                                     run_directory, summarize)
from gsrl.finetune.config import EncoderSpec, FinetuneConfig
from gsrl.finetune.train import FinetuneResult, finetune
from gsrl.jobs.grid import GridReport, run_grid, write_grid_report
from gsrl.runtime import resolve_cache_dir


@ray.remote
def _finetune_task(
    dataset_name: str,
    data_root: str,
    cache_dir: str,
    split: ScaffoldSplit,
    encoder: EncoderSpec,
    seed: int,
    config: FinetuneConfig,
    run_dir: str,
) -> FinetuneResult:
    """One run in a Ray worker; the dataset comes from the cache the driver filled."""
    if config.run.threads is not None:
        torch.set_num_threads(config.run.threads)
    dataset = load_property_dataset(dataset_name, data_root, cache_dir)
    return finetune(dataset, split, encoder, seed, config, run_dir=Path(run_dir))


def run_benchmark(config: FinetuneConfig) -> GridReport:
    """Run the grid ``config.datasets x encoders x seeds`` on the running Ray cluster.

    Writes ``runs.jsonl`` (a line per finished run, as they finish), then ``results.json``
    (config, datasets, summary, every run with its per-epoch history, failures) and
    ``table.md`` into ``config.run.output_dir``. A run that raises is logged and listed under
    failures; the others go on.
    """
    if not ray.is_initialized():
        raise RuntimeError("run_benchmark needs a running Ray cluster: call ray.init(...) first")
    data_root = resolve_data_root(config.data.root)
    cache_dir = resolve_cache_dir(config.data.cache_dir)
    encoders = resolved_encoders(config, data_root)
    output_dir = Path(config.run.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    datasets: dict[str, dict[str, Any]] = {}
    splits: dict[str, ray.ObjectRef] = {}
    molecules: dict[str, str] = {}
    for name in config.datasets:
        dataset = load_property_dataset(name, data_root, cache_dir)
        split = scaffold_split(dataset.smiles)
        datasets[name] = dataset_summary(dataset, split)
        splits[name] = ray.put(split)
        molecules[name] = data_digest(dataset)

    cells = {(name, spec.name, seed): (name, str(data_root), str(cache_dir), splits[name], spec, seed, config,
                                       str(run_directory(output_dir, name, molecules[name], spec, seed, config)))
             for name in config.datasets for spec in encoders for seed in config.seeds}
    outcome = run_grid(
        _finetune_task, cells, {"num_cpus": config.ray.worker_cpus, "num_gpus": config.ray.worker_gpus}, output_dir,
        to_record=FinetuneResult.to_dict,
        describe=lambda key, result: (f"{key[0]} / {key[1]} / seed {key[2]}: test ROC-AUC {result.test_auc} "
                                      f"(epoch {result.best_epoch})"),
    )
    failures = [{"dataset": f["key"][0], "encoder": f["key"][1], "seed": f["key"][2], "error": f["error"]}
                for f in outcome.failures]
    results = outcome.runs
    summary = summarize(results, config.datasets, encoders)
    payload = {"config": dataclasses.asdict(config), "datasets": datasets, "summary": summary,
               "runs": [result.to_dict() for result in results], "failures": failures}
    note = (
        f"Test ROC-AUC (%) at the epoch with the best validation ROC-AUC, mean ± std over seeds "
        f"{list(config.seeds)}; scaffold split 80/10/10; {config.epochs} epochs."
    ) + outcome.failures_sentence()
    table = format_markdown(summary, encoders, f"Fine-tuning benchmark: {config.name}", note)
    return write_grid_report(output_dir, results, failures, summary, payload, table)
