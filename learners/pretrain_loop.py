"""What every Ray Train worker of a pretraining job runs (gsrl.jobs.pretrain is its driver).

Each rank trains on its own shards (rank r takes shards r, r + W, ...), every rank runs the same
number of steps per epoch (the smallest rank's), and gradients are averaged by DDP. At the end of
every epoch rank 0 writes TensorBoard scalars (`pretrain/...`) and a checkpoint holding the
strategy, the optimizer, the epoch and, separately, the encoder in Hu et al.'s layout with a
metadata.json (corpus, strategy, epochs, featurizer version, git commit).
"""

from __future__ import annotations

import dataclasses
import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch

from gsrl.checkpoint import cpu_state_dict
from gsrl.config import config_from_dict
from gsrl.data.corpora import CorpusManifest, load_shards, manifest_from_dict
from gsrl.data.features import FEATURIZER_VERSION
from gsrl.models.encoder import MoleculeEncoder
from gsrl.precision import autocast
from gsrl.pretraining.config import PretrainConfig
from gsrl.pretraining.registry import make_strategy
from learners.data_parallel import end_epoch, rank_shards, resume_and_wrap, start_worker, steps_per_epoch, telemetry

ENCODER_FILE = "encoder.pth"
STATE_FILE = "state.pt"
METADATA_FILE = "metadata.json"


def train_loop(loop_config: dict[str, Any]) -> None:
    """What every Ray Train worker runs."""
    cfg = config_from_dict(loop_config["config"], "pretraining job", schema=PretrainConfig)
    manifest = manifest_from_dict(loop_config["manifest"])
    rank, world = start_worker(cfg.run.threads, cfg.seed)
    encoder = MoleculeEncoder(cfg.encoder.conv, cfg.encoder.num_layers, cfg.encoder.emb_dim, cfg.encoder.dropout,
                              pooling=cfg.encoder.pooling)
    if cfg.encoder.pretrained:
        encoder.load_pretrained(cfg.encoder.pretrained)
    strategy = make_strategy(cfg.strategy, encoder, cfg.settings)
    model, optimizer, device, start_epoch = resume_and_wrap(
        strategy, partial(torch.optim.Adam, lr=cfg.lr, weight_decay=cfg.weight_decay), STATE_FILE, "strategy")

    shard_count = len(manifest.shards)
    corpus = load_shards(Path(loop_config["cache_directory"]), rank_shards(shard_count, rank, world))
    steps = steps_per_epoch(manifest, world, cfg.batch_size)
    board = telemetry(loop_config["run_directory"], loop_config["config"]) if rank == 0 else None
    for epoch in range(start_epoch, cfg.epochs):
        started = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, epoch, rank])
        order = rng.permutation(len(corpus))
        model.train()
        totals: dict[str, float] = {}
        for step in range(steps):
            ids = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            batch = Batch.from_data_list([strategy.prepare(corpus.molecule(int(i)), rng) for i in ids]).to(device)
            with autocast(device, cfg.run.precision):
                loss, metrics = model(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in {"loss": float(loss.detach()), **metrics}.items():
                totals[key] = totals.get(key, 0.0) + value / steps
        totals["molecules_per_s"] = steps * cfg.batch_size * world / (time.perf_counter() - started)

        def write_files(directory: Path, epoch: int = epoch + 1) -> None:
            torch.save({"strategy": strategy.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch},
                       directory / STATE_FILE)
            torch.save(cpu_state_dict(strategy.encoder), directory / ENCODER_FILE)
            metadata = encoder_metadata(cfg, manifest, epoch, loop_config["git_commit"])
            (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2))

        end_epoch(epoch + 1, totals, rank, board, "pretrain", write_files)
    if board is not None:
        board.close()


def encoder_metadata(cfg: PretrainConfig, manifest: CorpusManifest, epoch: int, commit: str | None) -> dict[str, Any]:
    """What an encoder checkpoint says about itself; ``commit`` is the driver's (workers may start later,
    from a checkout that has moved on)."""
    return {"strategy": cfg.strategy, "settings": cfg.settings, "epochs": epoch,
            "encoder": dataclasses.asdict(cfg.encoder),
            "corpus": {"source": manifest.source, "sha256": manifest.source_sha256,
                       "molecules": manifest.parsed, "failed_smiles": manifest.failed,
                       "max_shards": cfg.corpus.max_shards},
            "featurizer_version": FEATURIZER_VERSION, "git_commit": commit,
            "optimizer": {"name": "adam", "lr": cfg.lr, "weight_decay": cfg.weight_decay,
                          "batch_size": cfg.batch_size, "workers": cfg.run.workers}}
