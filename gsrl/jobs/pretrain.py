"""Pretraining as a data-parallel Ray Train job (gloo on CPUs, NCCL on GPUs): the driver.

The driver featurizes the corpus into its sharded cache (Ray tasks), then starts a TorchTrainer whose
workers run `learners.pretrain_loop.train_loop`, and copies the final encoder (Hu et al.'s layout) and
its metadata.json into the run directory (gsrl.rundir's layout; Ray Train's checkpoints in checkpoints/).
``--resume RUN_DIR`` continues a run from its last reported checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
import yaml

from actors.corpus_featurizer import build_corpus
from gsrl.checkpoint import git_commit
from gsrl.data.corpora import CorpusCache
from gsrl.data.roots import resolve_data_root
from gsrl.errors import ConfigError
from gsrl.models.checkpoints import resolve_checkpoint
from gsrl.precision import check_precision
from gsrl.pretraining.config import PretrainConfig
from gsrl.rundir import RunDirectory
from gsrl.runtime import resolve_cache_dir
from learners.data_parallel import connect_for, copy_outputs, fit
from learners.pretrain_loop import ENCODER_FILE, METADATA_FILE, train_loop


def run_pretraining(cfg: PretrainConfig, run_dir: Path | None = None, resume: bool = False) -> Path:
    """Featurize the corpus, train in ``run_dir`` (default: run.output_dir/name), or with ``resume`` continue the
    run there, and copy the final encoder (+ metadata) into it; results.json says what it trained."""
    layout = RunDirectory(Path(run_dir or Path(cfg.run.output_dir) / cfg.name).resolve())
    settings = yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)
    layout.check(resume)
    check_precision(cfg.run.precision, torch.device("cuda" if cfg.ray.worker_gpus > 0 else "cpu"))
    connect_for(cfg)
    data_root = resolve_data_root(cfg.data.root)
    source = Path(cfg.corpus.path)
    source = source if source.is_absolute() else data_root / source
    supervised = cfg.strategy == "supervised"
    cache = CorpusCache(source, resolve_cache_dir(cfg.data.cache_dir), cfg.corpus.shard_size, cfg.corpus.column,
                        labels=supervised, label_columns=cfg.corpus.label_columns)
    manifest = build_corpus(cache, cfg.corpus.featurize_tasks, cfg.corpus.max_shards)
    if supervised:  # one logit per label column of the corpus
        tasks = len(manifest.task_names)
        if cfg.settings.get("num_tasks", tasks) != tasks:
            raise ConfigError(f"settings.num_tasks is {cfg.settings['num_tasks']} but {source} has {tasks} label "
                              f"columns")
        cfg = dataclasses.replace(cfg, settings={**cfg.settings, "num_tasks": tasks})
    if len(manifest.shards) < cfg.run.workers:
        raise ConfigError(f"{source} gives {len(manifest.shards)} shard(s) for {cfg.run.workers} workers: every worker "
                          f"trains on its own shards; lower corpus.shard_size or raise corpus.max_shards")
    if cfg.encoder.pretrained:  # resolved here so that every worker loads the same file
        pretrained = resolve_checkpoint(cfg.encoder.pretrained, data_root).resolve()
        cfg = dataclasses.replace(cfg, encoder=dataclasses.replace(cfg.encoder, pretrained=str(pretrained)))
    lock = layout.start(settings, resume)
    try:
        loop_config = {"config": dataclasses.asdict(cfg), "manifest": dataclasses.asdict(manifest),
                       "cache_directory": str(cache.directory), "run_directory": str(layout.path),
                       "git_commit": git_commit()}
        result = fit(train_loop, loop_config, layout.path, cfg)
        copy_outputs(result, layout.path, (ENCODER_FILE, METADATA_FILE))
        metadata = json.loads((layout.path / METADATA_FILE).read_text())
        layout.write_results({**metadata, "encoder_file": ENCODER_FILE, "final_epoch_metrics": {
            key: value for key, value in result.metrics.items() if isinstance(value, (int, float))}})
    finally:
        lock.release()
    return layout.path
