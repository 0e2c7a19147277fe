"""One fine-tuning run: a GIN (or other) encoder plus a linear multi-task head on one dataset.

This is the downstream protocol of Hu et al. 2020: Adam, masked binary cross-entropy over the
labelled (molecule, task) pairs, ROC-AUC averaged over the tasks that have both classes in the
evaluated split, and the test ROC-AUC reported at the epoch with the best validation ROC-AUC.
Everything a run needs comes in as arguments and everything it measured goes out in the
result, so the same function serves a local call, a test and a Ray task.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn
from torch_geometric.data import Batch

import yaml

from gsrl.checkpoint import CheckpointStore
from gsrl.data.graphs import MoleculeGraphs
from gsrl.data.property_datasets import PropertyDataset
from gsrl.data.scaffold import ScaffoldSplit
from gsrl.finetune.config import EncoderSpec, FinetuneConfig
from gsrl.models.encoder import MoleculeEncoder
from gsrl.models.functional import full_precision
from gsrl.precision import autocast, check_precision
from gsrl.rundir import RunDirectory
from gsrl.runtime import device_named
from gsrl.telemetry import Telemetry

__all__ = [
    "EpochMetrics",
    "FinetuneResult",
    "PropertyPredictor",
    "best_epoch",
    "build_predictor",
    "finetune",
    "masked_bce",
    "mean_roc_auc",
    "task_roc_aucs",
]

logger = logging.getLogger(__name__)



class PropertyPredictor(nn.Module):
    """Pooled molecule embedding -> one logit per task (pretrain-gnns' ``GNN_graphpred``)."""

    def __init__(self, encoder: MoleculeEncoder, num_tasks: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.output_dim, num_tasks)

    def forward(self, batch: Batch) -> Tensor:
        embeddings = self.encoder(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        return self.head(embeddings)


def build_predictor(num_tasks: int, encoder: EncoderSpec, config: FinetuneConfig) -> PropertyPredictor:
    """A freshly initialised predictor; the encoder loads ``encoder.path`` when it names a checkpoint."""
    module = MoleculeEncoder(
        conv=encoder.conv,
        num_layers=config.num_layers,
        emb_dim=config.emb_dim,
        dropout=config.dropout,
        jk="last",
        pooling=config.pooling,
    )
    if encoder.path is not None:
        module.load_pretrained(encoder.path)
    return PropertyPredictor(module, num_tasks)


def masked_bce(logits: Tensor, labels: Tensor) -> Tensor:
    """Binary cross-entropy averaged over the labelled entries; NaN labels (missing) add nothing.

    A batch without any label gives 0 (with a gradient of 0) instead of 0/0.
    """
    known = ~torch.isnan(labels)
    losses = F.binary_cross_entropy_with_logits(logits, torch.nan_to_num(labels), reduction="none")
    return torch.where(known, losses, torch.zeros_like(losses)).sum() / known.sum().clamp(min=1)


def task_roc_aucs(labels: np.ndarray, scores: np.ndarray) -> list[float | None]:
    """ROC-AUC of each task over its labelled molecules; None where the split lacks one class."""
    aucs: list[float | None] = []
    for task in range(labels.shape[1]):
        known = ~np.isnan(labels[:, task])
        y = labels[known, task]
        if (y == 1).any() and (y == 0).any():
            aucs.append(float(roc_auc_score(y, scores[known, task])))
        else:
            aucs.append(None)
    return aucs


def mean_roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Mean over the tasks whose ROC-AUC is defined; None when none is."""
    aucs = [auc for auc in task_roc_aucs(labels, scores) if auc is not None]
    return float(np.mean(aucs)) if aucs else None


def best_epoch(valid_aucs: Sequence[float | None]) -> int:
    """Index of the highest validation ROC-AUC, the earliest on ties; undefined values never win."""
    values = [-math.inf if auc is None or math.isnan(auc) else auc for auc in valid_aucs]
    if not values or max(values) == -math.inf:
        raise ValueError("validation ROC-AUC is undefined at every epoch (no task has both classes)")
    return int(np.argmax(values))


@dataclass
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean of the batch losses
    train_auc: float | None  # None when not evaluated (config.eval_train false) or undefined
    valid_auc: float | None
    test_auc: float | None
    seconds: float  # training plus evaluation


@dataclass
class FinetuneResult:
    """What one (dataset, encoder, seed) run measured."""

    dataset: str
    encoder: str
    seed: int
    best_epoch: int  # 1-based epoch with the best validation ROC-AUC
    valid_auc: float  # at best_epoch
    test_auc: float | None  # at best_epoch: the number the benchmark reports
    history: list[EpochMetrics]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def _scores(
    model: PropertyPredictor, graphs: MoleculeGraphs, ids: np.ndarray, batch_size: int, device: torch.device
) -> np.ndarray:
    """Logits of the given molecules, [len(ids), n_tasks] (AUC needs only their order)."""
    model.eval()
    chunks = [
        model(graphs.collate_ids(ids[start:start + batch_size]).to(device)).cpu()
        for start in range(0, len(ids), batch_size)
    ]
    return torch.cat(chunks).numpy()


def _split_auc(
    model: PropertyPredictor, dataset: PropertyDataset, ids: np.ndarray, config: FinetuneConfig, device: torch.device
) -> float | None:
    scores = _scores(model, dataset.graphs, ids, config.eval_batch_size, device)
    return mean_roc_auc(dataset.labels[torch.as_tensor(np.array(ids))].numpy(), scores)


def _train_epoch(
    model: PropertyPredictor,
    dataset: PropertyDataset,
    ids: np.ndarray,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    config: FinetuneConfig,
    device: torch.device,
) -> float:
    """One shuffled pass over the training molecules; returns the mean batch loss."""
    model.train()
    order = ids[torch.randperm(len(ids), generator=generator).numpy()]
    losses = []
    for start in range(0, len(order), config.batch_size):
        batch_ids = order[start:start + config.batch_size]
        with autocast(device, config.run.precision):
            logits = full_precision(model(dataset.graphs.collate_ids(batch_ids).to(device)))
        loss = masked_bce(logits, dataset.labels[torch.from_numpy(batch_ids)].to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def _save_checkpoint(store: CheckpointStore, model: nn.Module, optimizer: torch.optim.Optimizer,
                     generator: torch.Generator, device: torch.device, history: list[EpochMetrics]) -> None:
    """Everything the next epoch depends on (weights, Adam moments, both random streams) and the history."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "batch_order": generator.get_state(),
             "torch_rng": torch.get_rng_state(), "history": [asdict(m) for m in history],
             "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    store.save(len(history), state, {})


_CHECKPOINT_KEYS = frozenset({"model", "optimizer", "batch_order", "torch_rng", "cuda_rng", "history"})


def _read_checkpoint(store: CheckpointStore) -> dict[str, Any] | None:
    """The newest checkpoint whose checksum verifies, or None when there is none (the store warns about a
    torn or corrupted file and falls back). A file of another layout is reported and the run starts again
    rather than failing the whole grid."""
    restored = store.load_latest()
    if restored is None:
        return None
    state, entry = restored
    if not isinstance(state, dict) or set(state) != _CHECKPOINT_KEYS:
        logger.warning("%s: not a fine-tuning checkpoint (expected the keys %s); the run starts from epoch 1",
                       store.directory / entry["file"], sorted(_CHECKPOINT_KEYS))
        return None
    return state


def _restore(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
             generator: torch.Generator, device: torch.device) -> list[EpochMetrics]:
    """Put a run back where its checkpoint left it; returns the epochs it had finished."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["batch_order"].cpu())
    torch.set_rng_state(state["torch_rng"].cpu())
    if state["cuda_rng"] is not None:
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
    return [EpochMetrics(**metrics) for metrics in state["history"]]


def finetune(
    dataset: PropertyDataset, split: ScaffoldSplit, encoder: EncoderSpec, seed: int, config: FinetuneConfig,
    run_dir: Path | None = None,
) -> FinetuneResult:
    """Fine-tune for ``config.epochs`` epochs and evaluate after each one.

    ``seed`` seeds torch's global RNG (head and encoder initialisation, dropout) and a private
    generator for the batch order, so a run is reproducible on a given device. ``encoder.path``
    must be a real file path (placeholders already resolved).

    With ``run_dir`` (the run-directory layout of gsrl.rundir) the run saves its settings, checkpoints
    after every epoch, logs each epoch to TensorBoard (``finetune/...``), writes results.json, and
    continues from the checkpoint it finds there: an interrupted run loses at most one epoch. Nothing in
    the protocol depends on the total number of epochs (constant learning rate), so a run asked for more
    epochs than its checkpoint holds trains only the missing ones, and one asked for fewer reads its result
    off the first ``config.epochs`` epochs: both equal a run of exactly that length.
    """
    device = device_named(config.run.device)
    check_precision(config.run.precision, device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_predictor(dataset.num_tasks, encoder, config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.decay)

    layout = RunDirectory(Path(run_dir)) if run_dir else None
    store = CheckpointStore(layout.checkpoints, keep=1) if layout else None
    checkpoint = _read_checkpoint(store) if store else None
    history = _restore(checkpoint, model, optimizer, generator, device) if checkpoint else []
    telemetry = None
    if layout and len(history) < config.epochs:
        settings = {"dataset": dataset.name, "encoder": asdict(encoder), "seed": seed, "config": asdict(config)}
        layout.path.mkdir(parents=True, exist_ok=True)
        layout.config_file.write_text(yaml.safe_dump(settings, sort_keys=False))
        telemetry = Telemetry(layout.tensorboard, settings)
    for epoch in range(len(history) + 1, config.epochs + 1):
        started = time.perf_counter()
        train_loss = _train_epoch(model, dataset, split.train, optimizer, generator, config, device)
        train_auc = _split_auc(model, dataset, split.train, config, device) if config.eval_train else None
        valid_auc = _split_auc(model, dataset, split.valid, config, device)
        test_auc = _split_auc(model, dataset, split.test, config, device)
        history.append(EpochMetrics(epoch, train_loss, train_auc, valid_auc, test_auc, time.perf_counter() - started))
        logger.debug("%s/%s/seed %d epoch %d: %s", dataset.name, encoder.name, seed, epoch, history[-1])
        if store:
            _save_checkpoint(store, model, optimizer, generator, device, history)
            telemetry.scalars({f"finetune/{key}": value for key, value in asdict(history[-1]).items()
                               if key not in ("epoch", "seconds")} | {"time/epoch_s": history[-1].seconds}, epoch)
    history = history[:config.epochs]
    best = history[best_epoch([m.valid_auc for m in history])]
    if telemetry:
        telemetry.results({"valid_auc": best.valid_auc, "test_auc": best.test_auc}, best.epoch)
        telemetry.close()
    logger.info(
        "%s / %s / seed %d: best valid ROC-AUC %.4f at epoch %d, test %s",
        dataset.name, encoder.name, seed, best.valid_auc, best.epoch, best.test_auc,
    )
    result = FinetuneResult(
        dataset=dataset.name,
        encoder=encoder.name,
        seed=seed,
        best_epoch=best.epoch,
        valid_auc=float(best.valid_auc),
        test_auc=best.test_auc,
        history=history,
    )
    if layout:
        layout.write_results(result.to_dict())
    return result
