"""The link-prediction sweep's cells, their run directories, summary and table (gsrl.jobs.gae runs it).

Every cell is an ordinary job with its own run directory ``<output_dir>/runs/<name>-<digest>``, the
digest being that of its settings, so an interrupted sweep re-run with the same config skips
finished jobs and resumes the others, and a changed setting gets new runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from gsrl.checkpoint import identity_digest
from gsrl.config import config_from_dict
from gsrl.gae.link.config import LinkPredictionConfig, LinkSweepConfig
from gsrl.gae.link.train import LinkResult
from gsrl.stats import mean_std

__all__ = ["PUBLISHED", "cell_configs", "format_markdown", "run_directory", "summarize"]


# Kipf & Welling 2016 (arXiv 1611.07308), Table 1: test (AUC, AP) in %, GCN encoder.
PUBLISHED = {
    ("cora", "gae-gcn"): (91.0, 92.0), ("cora", "vgae-gcn"): (91.4, 92.6),
    ("citeseer", "gae-gcn"): (89.5, 89.9), ("citeseer", "vgae-gcn"): (90.8, 92.0),
}


def cell_configs(sweep: LinkSweepConfig) -> dict[tuple[str, str, int], LinkPredictionConfig]:
    """(dataset, column, seed) -> the job config of that cell: shared settings < dataset overrides < cell."""
    cells = {}
    shared = dataclasses.asdict(sweep.job)
    for dataset in sweep.datasets:
        for entry in sweep.models:
            column = sweep.column(entry)
            for seed in sweep.seeds:
                values = {**shared, **sweep.dataset_overrides.get(dataset, {}), **entry, "dataset": dataset,
                          "seed": seed, "name": f"{dataset}-{column}-seed{seed}"}
                cells[(dataset, column, seed)] = config_from_dict(
                    values, f"{sweep.name}: dataset_overrides.{dataset}", schema=LinkPredictionConfig)
    return cells


# Settings that decide where and how fast a job runs, not what it computes: left out of its identity.
_NOT_RUN_IDENTITY = frozenset({"name", "checkpoint_every", "data", "run", "ray"})


def run_directory(output_dir: Path, config: LinkPredictionConfig) -> Path:
    identity = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_RUN_IDENTITY}
    return output_dir / "runs" / f"{config.name}-{identity_digest(identity)}"


def summarize(results: list[LinkResult], sweep: LinkSweepConfig) -> dict[str, Any]:
    """Per dataset and column: test AUC and AP (mean ± std over seeds), epochs/s and best epochs."""
    columns = [sweep.column(entry) for entry in sweep.models]
    cells: dict[str, dict[str, Any]] = {d: {} for d in sweep.datasets}
    for dataset in sweep.datasets:
        for column in columns:
            runs = [r for r in results if r.dataset == dataset and f"{r.model}-{r.conv}" == column]
            cells[dataset][column] = {
                "test_auc": mean_std([r.test_auc for r in runs]),
                "test_ap": mean_std([r.test_ap for r in runs]),
                "epochs_per_s": float(np.mean([r.epochs_per_s for r in runs])) if runs else None,
                "devices": sorted({r.device for r in runs}),
                "best_epochs": [r.best_epoch for r in runs],
                "published_auc_ap": PUBLISHED.get((dataset, column)),
            }
    return {"metric": "test AUC / AP at the best-validation-AUC epoch", "datasets": list(sweep.datasets),
            "columns": columns, "cells": cells}


def _cell_text(cell: dict[str, Any]) -> str:
    auc, ap = cell["test_auc"], cell["test_ap"]
    if auc["mean"] is None:
        return "—"
    text = f"{100 * auc['mean']:.1f} ± {100 * auc['std']:.1f} / {100 * ap['mean']:.1f} ± {100 * ap['std']:.1f}"
    if cell["published_auc_ap"]:
        text += " (paper {:.1f} / {:.1f})".format(*cell["published_auc_ap"])
    return text


def format_markdown(summary: dict[str, Any], title: str, note: str) -> str:
    columns = summary["columns"]
    lines = [f"# {title}", "", note, "", "| Dataset | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for dataset in summary["datasets"]:
        lines.append(f"| {dataset} | " + " | ".join(_cell_text(summary["cells"][dataset][c]) for c in columns) + " |")
    lines += ["", "Training speed (epochs/s, mean over seeds; the device that trained them):", "",
              "| Dataset | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for dataset in summary["datasets"]:
        cells = [summary["cells"][dataset][c] for c in columns]
        lines.append(f"| {dataset} | " + " | ".join(
            "—" if c["epochs_per_s"] is None else f"{c['epochs_per_s']:.1f} ({', '.join(c['devices'])})"
            for c in cells) + " |")
    return "\n".join(lines) + "\n"
