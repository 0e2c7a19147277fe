"""Pretraining as a data-parallel Ray Train job (gloo on CPUs, NCCL on GPUs): the driver.

The driver featurizes the corpus into its sharded cache (Ray tasks), then starts a TorchTrainer whose
workers run `learners.pretrain_loop.train_loop`, and copies the final encoder (Hu et al.'s layout) and
its metadata.json into the run directory. Running the same job again (same name and output directory)
resumes from the last reported checkpoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from actors.corpus_featurizer import build_corpus
from gsrl.checkpoint import git_commit
from gsrl.data.corpora import CorpusCache
from gsrl.data.datasets import resolve_data_root
from gsrl.errors import ConfigError
from gsrl.models.checkpoints import resolve_checkpoint
from gsrl.pretraining.config import PretrainConfig
from gsrl.runtime import resolve_cache_dir
from learners.data_parallel import connect_for, copy_outputs, fit
from learners.pretrain_loop import ENCODER_FILE, METADATA_FILE, train_loop


def run_pretraining(cfg: PretrainConfig) -> Path:
    """Featurize the corpus, train, and copy the final encoder (+ metadata) into the run directory."""
    connect_for(cfg)
    data_root = resolve_data_root(cfg.data_root)
    source = Path(cfg.corpus.path)
    source = source if source.is_absolute() else data_root / source
    supervised = cfg.strategy == "supervised"
    cache = CorpusCache(source, resolve_cache_dir(cfg.cache_dir), cfg.corpus.shard_size, cfg.corpus.column,
                        labels=supervised, label_columns=cfg.corpus.label_columns)
    manifest = build_corpus(cache, cfg.corpus.featurize_tasks, cfg.corpus.max_shards)
    if supervised:  # one logit per label column of the corpus
        tasks = len(manifest.task_names)
        if cfg.settings.get("num_tasks", tasks) != tasks:
            raise ConfigError(f"settings.num_tasks is {cfg.settings['num_tasks']} but {source} has {tasks} label "
                              f"columns")
        cfg = dataclasses.replace(cfg, settings={**cfg.settings, "num_tasks": tasks})
    if len(manifest.shards) < cfg.workers:
        raise ConfigError(f"{source} gives {len(manifest.shards)} shard(s) for {cfg.workers} workers: every worker "
                          f"trains on its own shards; lower corpus.shard_size or raise corpus.max_shards")
    if cfg.encoder.pretrained:  # resolved here so that every worker loads the same file
        pretrained = resolve_checkpoint(cfg.encoder.pretrained, data_root).resolve()
        cfg = dataclasses.replace(cfg, encoder=dataclasses.replace(cfg.encoder, pretrained=str(pretrained)))
    run_directory = (Path(cfg.output_dir) / cfg.name).resolve()
    run_directory.mkdir(parents=True, exist_ok=True)
    loop_config = {"config": dataclasses.asdict(cfg), "manifest": dataclasses.asdict(manifest),
                   "cache_directory": str(cache.directory), "run_directory": str(run_directory),
                   "git_commit": git_commit()}
    result = fit(train_loop, loop_config, run_directory, cfg)
    copy_outputs(result, run_directory, (ENCODER_FILE, METADATA_FILE))
    return run_directory
