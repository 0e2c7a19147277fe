"""What every Ray Train worker of the molecular VGAE job runs (gsrl.jobs.molecular_vgae is its driver).

Each rank trains on its own shards with DDP, every rank running the same number of steps per epoch;
the KL weight warms up linearly over ``kl_warmup_epochs``. After every epoch rank 0 logs ``vgae/...``
scalars and checkpoints the model, the optimizer and the epoch (state.pt), the model alone (model.pt)
and metadata.json; every ``picture_every`` epochs (and at the last) it also scores a few hundred prior
samples and publishes a grid of generated molecules and the latent space of held-out molecules coloured
by QED (gsrl.gae.molecular.report.epoch_pictures).
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsrl.checkpoint import cpu_state_dict
from gsrl.config import config_from_dict
from gsrl.data.corpora import manifest_from_dict
from gsrl.gae.molecular.config import MolecularVGAEConfig
from gsrl.gae.molecular.data import collate_molecules, load_corpus
from gsrl.gae.molecular.report import build_model, epoch_pictures
from learners.data_parallel import end_epoch, rank_shards, resume_and_wrap, start_worker, steps_per_epoch, telemetry

STATE_FILE = "state.pt"  # model, optimizer and epoch: where a resumed job continues
MODEL_FILE = "model.pt"  # the weights alone (CPU tensors): what the report loads
METADATA_FILE = "metadata.json"  # corpora, featurizer, properties, epochs, the driver's git commit


def train_loop(loop_config: dict[str, Any]) -> None:
    """What every Ray Train worker runs: train on this rank's shards; rank 0 also logs, draws and checkpoints."""
    cfg = config_from_dict(loop_config["config"], "molecular VGAE job", schema=MolecularVGAEConfig)
    manifest = manifest_from_dict(loop_config["manifest"])
    rank, world = start_worker(cfg.run.threads, cfg.seed)
    model = build_model(cfg)
    model.property_mean.copy_(torch.tensor(loop_config["property_mean"]))
    model.property_std.copy_(torch.tensor(loop_config["property_std"]))
    parallel, optimizer, device, start_epoch = resume_and_wrap(model, partial(torch.optim.Adam, lr=cfg.lr),
                                                               STATE_FILE, "model")
    corpus = load_corpus(loop_config["cache_directory"], manifest, rank_shards(len(manifest.shards), rank, world))
    steps = steps_per_epoch(manifest, world, cfg.batch_size)
    board = holdout = training_smiles = training_properties = None
    run_directory = Path(loop_config["run_directory"])
    if rank == 0:
        board = telemetry(str(run_directory), loop_config["config"])
        holdout = load_corpus(loop_config["holdout_directory"], manifest_from_dict(loop_config["holdout_manifest"]))
        everything = load_corpus(loop_config["cache_directory"], manifest)
        training_smiles, training_properties = set(everything.smiles), everything.properties.numpy()
    for epoch in range(start_epoch, cfg.epochs):
        started = time.perf_counter()
        kl_weight = cfg.kl_weight * min(1.0, (epoch + 1) / cfg.kl_warmup_epochs) if cfg.kl_warmup_epochs else \
            cfg.kl_weight
        order = torch.from_numpy(np.random.default_rng([cfg.seed, epoch, rank]).permutation(len(corpus)))
        parallel.train()
        totals: dict[str, float] = {}
        for step in range(steps):
            ids = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            batch = collate_molecules(corpus.atoms[ids], corpus.bonds[ids], corpus.properties[ids]).to(device)
            terms = parallel(batch, kl_weight, cfg.property_weight)
            if not torch.isfinite(terms.loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}, step {step}: {terms.scalars()}")
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            optimizer.step()
            for key, value in terms.scalars().items():
                totals[key] = totals.get(key, 0.0) + value / steps
        totals["molecules_per_s"] = steps * cfg.batch_size * world / (time.perf_counter() - started)
        totals["kl_weight"] = kl_weight
        if rank == 0 and ((epoch + 1) % cfg.picture_every == 0 or epoch + 1 == cfg.epochs):
            totals.update(epoch_pictures(model, cfg, holdout, training_smiles, training_properties, epoch + 1,
                                         board, run_directory))

        def write_files(directory: Path, epoch: int = epoch + 1) -> None:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch},
                       directory / STATE_FILE)
            torch.save(cpu_state_dict(model), directory / MODEL_FILE)
            metadata = {**loop_config["metadata"], "epochs": epoch}
            (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2))

        end_epoch(epoch + 1, totals, rank, board, "vgae", write_files)
    if board is not None:
        board.close()
