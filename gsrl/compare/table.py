"""The comparison table: ROC-AUC under both protocols, speed, and the published figures beside them."""

from __future__ import annotations

from typing import Any

import numpy as np

from gsrl.stats import mean_std

# ROC-AUC (%) 10-shot, mean over 10 seeds, pretrained-encoder setting, as tabulated by Pin-Tuning
# (NeurIPS 2024, arXiv 2411.01158, Table 1). Keyed by (dataset, table column), so that variants such
# as first-order MAML or GS-Meta's ablations are not set beside a figure of another method.
PUBLISHED = {
    ("tox21", "gsmeta"): (86.67, "Pre-GS-Meta"), ("sider", "gsmeta"): (84.36, "Pre-GS-Meta"),
    ("tox21", "pre-gsmeta"): (86.67, "Pre-GS-Meta"), ("sider", "pre-gsmeta"): (84.36, "Pre-GS-Meta"),
    ("tox21", "maml"): (80.21, "MAML"), ("sider", "maml"): (70.43, "MAML"),
    ("tox21", "protonet"): (74.98, "ProtoNet"), ("sider", "protonet"): (64.54, "ProtoNet"),
}
PUBLISHED_SOURCE = "Pin-Tuning (arXiv 2411.01158) Table 1, pretrained encoders, 10 seeds"


def run_record(column: str, results: dict[str, Any]) -> dict[str, Any]:
    """One finished run, as a progress line and a table input."""
    protocols, timing = results["protocols"], results["timing"]
    return {"column": column, "algorithm": results["algorithm"], "seed": results["seed"],
            "dataset": results["dataset"], "iterations": results["iterations"],
            "paper_auc": protocols["paper"]["auc_mean"], "paper_iteration": protocols["paper"]["iteration"],
            "honest_auc": protocols["honest"]["auc_mean"], **timing}


def summarize(records: list[dict[str, Any]], columns: list[str]) -> dict[str, Any]:
    """Per column: both protocols' ROC-AUC (mean ± std over seeds), wall time and meta-iterations/s."""
    cells = {}
    for column in columns:
        runs = [r for r in records if r["column"] == column]
        dataset = runs[0]["dataset"] if runs else None
        cells[column] = {
            "algorithm": runs[0]["algorithm"] if runs else None,
            "paper": mean_std([r["paper_auc"] for r in runs if r["paper_auc"] is not None]),
            "honest": mean_std([r["honest_auc"] for r in runs]),
            "wall_seconds": float(np.mean([r["wall_seconds"] for r in runs])) if runs else None,
            "meta_iterations_per_s": float(np.mean([r["meta_iterations_per_s"] for r in runs])) if runs else None,
            "published": PUBLISHED.get((dataset, column)),
        }
    return {"columns": columns, "cells": cells}


def _auc(summary: dict[str, Any]) -> str:
    if summary["mean"] is None:
        return "—"
    return f"{100 * summary['mean']:.2f} ± {100 * summary['std']:.2f} (n={summary['seeds']})"


def format_markdown(summary: dict[str, Any], title: str, note: str) -> str:
    lines = [f"# {title}", "", note, "",
             "| Algorithm | Paper protocol ROC-AUC | Honest ROC-AUC | Published | Wall time / run | Meta-it/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for column in summary["columns"]:
        cell = summary["cells"][column]
        published = "—" if cell["published"] is None else "{:.2f} ({})".format(*cell["published"])
        wall = "—" if cell["wall_seconds"] is None else f"{cell['wall_seconds'] / 60:.1f} min"
        speed = "—" if cell["meta_iterations_per_s"] is None else f"{cell['meta_iterations_per_s']:.3f}"
        lines.append(f"| {column} | {_auc(cell['paper'])} | {_auc(cell['honest'])} | {published} | {wall} | {speed} |")
    return "\n".join(lines) + "\n"
