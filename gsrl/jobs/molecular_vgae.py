"""The molecular VGAE as a data-parallel Ray Train job, then its generation report: the driver.

The driver featurizes the training and held-out corpora (Ray tasks, sharded cache) and starts a
TorchTrainer whose workers run `learners.molecular_vgae_loop.train_loop` (DDP, per-epoch scalars,
checkpoints and pictures from rank 0), in gsrl.rundir's layout. ``--resume RUN_DIR`` continues a run from
its last epoch.
Finally a Ray task loads the trained model and runs `gsrl.gae.molecular.report.generation_report`,
and the driver writes its numbers with the training's metadata to ``results.json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import ray
import torch
import yaml

from actors.corpus_featurizer import build_corpus
from gsrl.checkpoint import git_commit, load_on_cpu
from gsrl.config import config_from_dict
from gsrl.data.corpora import CorpusCache, manifest_from_dict
from gsrl.data.roots import resolve_data_root
from gsrl.gae.molecular.config import MolecularVGAEConfig
from gsrl.gae.molecular.data import PROPERTIES, MolecularFeaturizer, load_corpus
from gsrl.gae.molecular.report import build_model, generation_report
from gsrl.rundir import RunDirectory
from gsrl.runtime import resolve_cache_dir
from learners.data_parallel import connect_for, copy_outputs, fit, telemetry
from learners.molecular_vgae_loop import METADATA_FILE, MODEL_FILE, train_loop

__all__ = ["run_molecular_vgae"]


def _prepare(cfg: MolecularVGAEConfig) -> dict[str, Any]:
    """Featurize both corpora (Ray tasks) and describe them for the workers."""
    data_root = resolve_data_root(cfg.data.root)
    featurizer = MolecularFeaturizer(cfg.vocabulary(), cfg.max_atoms)
    caches, manifests = {}, {}
    for role, path, max_shards in (("train", cfg.corpus.path, cfg.corpus.max_shards),
                                   ("holdout", cfg.corpus.holdout_path, cfg.corpus.holdout_max_shards)):
        source = Path(path) if Path(path).is_absolute() else data_root / path
        caches[role] = CorpusCache(source, resolve_cache_dir(cfg.data.cache_dir), cfg.corpus.shard_size,
                                   cfg.corpus.column, featurizer=featurizer)
        manifests[role] = build_corpus(caches[role], cfg.corpus.featurize_tasks, max_shards)
    training = load_corpus(str(caches["train"].directory), manifests["train"])
    metadata = {
        "corpus": {role: {"source": m.source, "sha256": m.source_sha256, "rows": m.rows,
                          "molecules": m.parsed - m.skipped, "failed_smiles": m.failed,
                          "skipped_unrepresentable": m.skipped, "shards": len(m.shards)}
                   for role, m in manifests.items()},
        "featurizer_version": featurizer.version, "atom_tokens": cfg.atom_tokens, "max_atoms": cfg.max_atoms,
        "properties": list(PROPERTIES), "git_commit": git_commit(),  # the driver's: workers may start later
    }
    return {"config": dataclasses.asdict(cfg), "manifest": dataclasses.asdict(manifests["train"]),
            "holdout_manifest": dataclasses.asdict(manifests["holdout"]),
            "cache_directory": str(caches["train"].directory), "holdout_directory": str(caches["holdout"].directory),
            "property_mean": training.properties.mean(dim=0).tolist(),
            "property_std": training.properties.std(dim=0).tolist(), "metadata": metadata}


@ray.remote
def _report_task(loop_config: dict[str, Any], run_directory: str) -> dict[str, Any]:
    cfg = config_from_dict(loop_config["config"], "molecular VGAE job", schema=MolecularVGAEConfig)
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    model = build_model(cfg)
    model.load_state_dict(load_on_cpu(Path(run_directory) / MODEL_FILE))
    training = load_corpus(loop_config["cache_directory"], manifest_from_dict(loop_config["manifest"]))
    holdout = load_corpus(loop_config["holdout_directory"], manifest_from_dict(loop_config["holdout_manifest"]))
    board = telemetry(run_directory, loop_config["config"])
    try:
        return generation_report(cfg, model, training, holdout, board, Path(run_directory))
    finally:
        board.close()


def run_molecular_vgae(cfg: MolecularVGAEConfig, run_dir: Path | None = None, resume: bool = False) -> Path:
    """Featurize, train in ``run_dir`` (default: run.output_dir/name; with ``resume``, continue the run there),
    report; returns the run directory."""
    layout = RunDirectory(Path(run_dir or Path(cfg.run.output_dir) / cfg.name).resolve())
    layout.check(resume)
    connect_for(cfg)
    loop_config = _prepare(cfg)
    lock = layout.start(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False), resume)
    try:
        run_directory = layout.path
        started = time.perf_counter()
        result = fit(train_loop, {**loop_config, "run_directory": str(run_directory)}, run_directory, cfg)
        train_seconds = time.perf_counter() - started
        copy_outputs(result, run_directory, (MODEL_FILE, METADATA_FILE))
        report = ray.get(_report_task.options(num_cpus=cfg.ray.worker_cpus, num_gpus=0).remote(
            loop_config, str(run_directory)))
        metadata = json.loads((run_directory / METADATA_FILE).read_text())
        layout.write_results({
            # metadata's git_commit is the training's; a resumed job may report with newer code.
            "config": dataclasses.asdict(cfg), **metadata, "report_git_commit": git_commit(),
            "train_seconds_this_process": train_seconds,
            "final_epoch_metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
            **report,
        })
    finally:
        lock.release()
    return run_directory
