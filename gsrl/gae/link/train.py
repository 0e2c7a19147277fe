"""One link-prediction job: train a GAE/VGAE on a graph's training edges, pick the epoch on validation AUC.

The run directory (gsrl.rundir's layout) holds ``config.yaml``, ``checkpoints/`` (every
``checkpoint_every`` epochs, with the RNG state, so ``resume`` continues the same run exactly),
``tensorboard/`` (``gae/...`` per epoch) and ``results.json``. A finished directory is returned as is,
which lets a re-run sweep (which always resumes) redo only its unfinished jobs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import Tensor
from torch_geometric.nn import GAE, VGAE
from torch_geometric.utils import to_dense_adj

from gsrl.checkpoint import CheckpointStore, git_commit
from gsrl.data.roots import resolve_data_root
from gsrl.gae.link.config import LinkPredictionConfig
from gsrl.gae.link.datasets import load_graph
from gsrl.gae.link.models import build_autoencoder
from gsrl.gae.link.split import LinkSplit, split_links
from gsrl.rundir import RunDirectory
from gsrl.runtime import device_named, resolve_cache_dir
from gsrl.telemetry import Telemetry

__all__ = ["LEGACY_RESULT_FILE", "LinkResult", "dense_reconstruction_loss", "link_scores", "train_link_predictor"]

logger = logging.getLogger(__name__)

LEGACY_RESULT_FILE = "result.json"  # what link-prediction jobs wrote before the common run-directory layout


@dataclass
class LinkResult:
    """What one job measured; AUC and AP are fractions in [0, 1]."""

    dataset: str
    model: str
    conv: str
    seed: int
    best_epoch: int  # 1-based, highest validation AUC (earliest on ties)
    val_auc: float
    val_ap: float
    test_auc: float
    test_ap: float
    epochs: int
    train_seconds: float  # training epochs only (evaluation excluded)
    split: dict[str, int]
    device: str  # what trained it ("cpu" or the GPU's name), since epochs/s depend on it

    @property
    def epochs_per_s(self) -> float:
        return self.epochs / self.train_seconds if self.train_seconds > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "epochs_per_s": self.epochs_per_s}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> LinkResult:
        """A result read back from its file or a grid's pack (extra keys such as git_commit are dropped)."""
        return cls(**{field.name: saved[field.name] for field in dataclasses.fields(cls)})


def dense_reconstruction_loss(z: Tensor, adjacency: Tensor) -> Tensor:
    """Kipf & Welling's loss: BCE over all N² pairs, positives up-weighted by #neg/#pos, times N²/(2·#neg)."""
    pairs = adjacency.numel()
    positives = adjacency.sum()
    negatives = pairs - positives
    logits = z @ z.t()
    loss = F.binary_cross_entropy_with_logits(logits, adjacency, pos_weight=negatives / positives)
    return pairs / (2 * negatives) * loss


@torch.no_grad()
def link_scores(model: GAE, x: Tensor, split: LinkSplit, pos: Tensor, neg: Tensor) -> tuple[float, float]:
    """(AUC, AP) of the decoder's probabilities for held-out positives against negatives."""
    model.eval()
    z = model.encode(x, split.message_edges)
    scores = torch.cat([model.decoder(z, pos, sigmoid=True), model.decoder(z, neg, sigmoid=True)]).cpu().numpy()
    labels = [1] * pos.size(1) + [0] * neg.size(1)
    return float(roc_auc_score(labels, scores)), float(average_precision_score(labels, scores))


def _train_epoch(model: GAE, x: Tensor, split: LinkSplit, adjacency: Tensor | None,
                 optimizer: torch.optim.Optimizer, negatives: torch.Generator) -> dict[str, float]:
    model.train()
    optimizer.zero_grad()
    z = model.encode(x, split.message_edges)
    if adjacency is not None:
        reconstruction = dense_reconstruction_loss(z, adjacency)
    else:
        reconstruction = model.recon_loss(z, split.train_pos, split.train_negatives(negatives).to(x.device))
    loss = reconstruction
    terms = {"reconstruction": reconstruction.item()}
    if isinstance(model, VGAE):  # KL per node, averaged over nodes, scaled by 1/N as in Kipf & Welling
        kl = model.kl_loss() / split.num_nodes
        loss = loss + kl
        terms["kl"] = kl.item()
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss {loss.item()} ({terms})")
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), **terms}


def _device_label(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def _best_index(history: list[dict[str, float]]) -> int:
    return max(range(len(history)), key=lambda i: (history[i]["val_auc"], -i))


def train_link_predictor(cfg: LinkPredictionConfig, run_dir: Path, resume: bool = False) -> LinkResult:
    """Train the job in ``run_dir``; with ``resume``, continue it from its last checkpoint, or return its
    result when it has finished."""
    layout = RunDirectory(Path(run_dir))
    saved = finished_result(layout.path) if resume else None
    if saved is not None:
        return saved
    settings = yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)
    lock = layout.start(settings, resume=resume and layout.config_file.exists())
    try:
        return _train(cfg, layout, resume)
    finally:
        lock.release()


def _train(cfg: LinkPredictionConfig, layout: RunDirectory, resume: bool) -> LinkResult:
    if cfg.run.threads is not None:
        torch.set_num_threads(cfg.run.threads)
    device = device_named(cfg.run.device)
    data = load_graph(cfg.dataset, resolve_data_root(cfg.data.root), resolve_cache_dir(cfg.data.cache_dir))
    split = split_links(data, cfg.seed, cfg.val_fraction, cfg.test_fraction)
    torch.manual_seed(cfg.seed)
    model = build_autoencoder(cfg.model, cfg.conv, data.num_features, cfg.hidden_channels, cfg.latent_channels,
                              cfg.heads).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x = data.x.to(device)
    split = split.to(device)
    negatives = torch.Generator().manual_seed(cfg.seed)  # the training negatives' stream
    adjacency = None
    if cfg.loss == "dense":  # training adjacency with self-loops, Kipf & Welling's reconstruction target
        adjacency = to_dense_adj(split.message_edges, max_num_nodes=split.num_nodes)[0]
        adjacency.fill_diagonal_(1.0)

    store = CheckpointStore(layout.checkpoints, keep=2)
    history: list[dict[str, float]] = []
    best_state: dict[str, Tensor] = {}
    train_seconds = 0.0
    restored = store.load_latest() if resume else None
    if restored:
        state = restored[0]
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        negatives.set_state(state["negatives_rng"])
        history, best_state, train_seconds = state["history"], state["best_model"], state["train_seconds"]
        logger.info("%s: resumed at epoch %d", layout.path, len(history))
    telemetry = Telemetry(layout.tensorboard, dataclasses.asdict(cfg))
    try:
        for epoch in range(len(history) + 1, cfg.epochs + 1):
            started = time.perf_counter()
            terms = _train_epoch(model, x, split, adjacency, optimizer, negatives)
            train_seconds += time.perf_counter() - started
            val_auc, val_ap = link_scores(model, x, split, split.val_pos, split.val_neg)
            history.append({**terms, "val_auc": val_auc, "val_ap": val_ap})
            telemetry.scalars({f"gae/{key}": value for key, value in history[-1].items()}, epoch)
            if _best_index(history) == epoch - 1:
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
                store.save(epoch, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "rng": torch.get_rng_state(), "negatives_rng": negatives.get_state(),
                                   "history": history, "best_model": best_state,
                                   "train_seconds": train_seconds},
                           {"git_commit": git_commit(), "config": dataclasses.asdict(cfg)})
        best = _best_index(history)
        model.load_state_dict(best_state)
        test_auc, test_ap = link_scores(model, x, split, split.test_pos, split.test_neg)
        telemetry.scalars({"gae/test_auc": test_auc, "gae/test_ap": test_ap}, best + 1)
        telemetry.results({"val_auc": history[best]["val_auc"], "test_auc": test_auc, "test_ap": test_ap}, best + 1)
    finally:
        telemetry.close()
    result = LinkResult(cfg.dataset, cfg.model, cfg.conv, cfg.seed, best + 1, history[best]["val_auc"],
                        history[best]["val_ap"], test_auc, test_ap, len(history), train_seconds, split.sizes(),
                        _device_label(device))
    layout.write_results({**result.to_dict(), "git_commit": git_commit()})
    return result


def finished_result(run_dir: Path) -> LinkResult | None:
    """The result of a finished job in ``run_dir`` (results.json, or the result.json earlier versions wrote)."""
    saved = RunDirectory(run_dir).read_results()
    legacy = Path(run_dir) / LEGACY_RESULT_FILE
    if saved is None and legacy.is_file():
        saved = json.loads(legacy.read_text())
    return None if saved is None else LinkResult.from_dict(saved)
