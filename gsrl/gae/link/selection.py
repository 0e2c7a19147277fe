"""Choosing among link-prediction sweeps that differ in a setting (encoder width, ...) on validation edges alone.

Every job of a sweep keeps the epoch with its best validation AUC; this lifts the same rule from epochs
to settings: for each dataset and model column, the sweep with the highest mean validation AUC over
seeds is chosen, and every candidate's test scores are shown beside it, so the choice never looks at
the test edges. Candidates must share seeds and edge splits, or their validation scores would not be
comparable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gsrl.checkpoint import atomic_write_json, git_commit
from gsrl.gae.link.sweep import PUBLISHED
from gsrl.stats import mean_std

__all__ = ["IncomparableSweeps", "format_selection", "select_on_validation", "write_selection"]

SCORES = ("val_auc", "val_ap", "test_auc", "test_ap")


class IncomparableSweeps(ValueError):
    """Two sweeps' runs of one cell differ in seeds or edge splits."""


def _cell_runs(payload: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(dataset, column) -> that cell's runs in seed order."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in sorted(payload["runs"], key=lambda r: r["seed"]):
        cells.setdefault((run["dataset"], f"{run['model']}-{run['conv']}"), []).append(run)
    return cells


def _splits(runs: list[dict[str, Any]]) -> dict[int, dict[str, int]]:
    return {run["seed"]: run["split"] for run in runs}


def select_on_validation(sweeps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``label -> results.json payload`` of each sweep → per (dataset, column) every candidate's mean ± std
    validation and test AUC/AP and the ``selected`` label (highest mean validation AUC; first label on ties)."""
    by_label = {label: _cell_runs(payload) for label, payload in sweeps.items()}
    cells: dict[str, dict[str, Any]] = {}
    keys = list(dict.fromkeys(key for runs in by_label.values() for key in runs))  # first sweep's order
    for dataset, column in keys:
        candidates = {label: runs[(dataset, column)] for label, runs in by_label.items() if (dataset, column) in runs}
        reference_label, reference = next(iter(candidates.items()))
        for label, runs in candidates.items():
            if _splits(runs) != _splits(reference):
                raise IncomparableSweeps(f"{dataset} / {column}: sweep {label!r} has other seeds or edge splits than "
                                         f"{reference_label!r} ({sorted(_splits(runs))} vs "
                                         f"{sorted(_splits(reference))})")
        summaries = {label: {score: mean_std([run[score] for run in runs]) for score in SCORES}
                     for label, runs in candidates.items()}
        selected = max(summaries, key=lambda label: summaries[label]["val_auc"]["mean"])  # ties: the first
        cells.setdefault(dataset, {})[column] = {"candidates": summaries, "selected": selected,
                                                 "published_auc_ap": PUBLISHED.get((dataset, column))}
    return {"rule": "per dataset and column, the sweep with the highest mean validation AUC over seeds",
            "labels": list(sweeps), "cells": cells}


def _pair(summary: dict[str, Any], first: str, second: str) -> str:
    return " / ".join(f"{100 * summary[key]['mean']:.1f} ± {100 * summary[key]['std']:.1f}" for key in (first, second))


def format_selection(selection: dict[str, Any], title: str, note: str) -> str:
    """Markdown: one row per dataset, column and candidate; the selected candidate in bold."""
    lines = [f"# {title}", "", note, "", "| Dataset | Model | Sweep | validation AUC / AP | test AUC / AP | paper |",
             "|---|---|---|---:|---:|---:|"]
    for dataset, columns in selection["cells"].items():
        for column, cell in columns.items():
            published = "{:.1f} / {:.1f}".format(*cell["published_auc_ap"]) if cell["published_auc_ap"] else ""
            for label, summary in cell["candidates"].items():
                test, paper = _pair(summary, "test_auc", "test_ap"), ""
                if label == cell["selected"]:
                    label, test, paper = f"**{label}**", f"**{test}**", published
                lines.append(f"| {dataset} | {column} | {label} | {_pair(summary, 'val_auc', 'val_ap')} | {test} | "
                             f"{paper} |")
    return "\n".join(lines) + "\n"


def write_selection(sweeps: dict[str, dict[str, Any]], results_files: list[str], out_dir: Path) -> str:
    """Select among ``sweeps`` (label -> the results.json read from the matching entry of ``results_files``)
    and write ``selection.json`` and ``selection.md`` into ``out_dir``; returns the markdown."""
    selection = select_on_validation(sweeps)
    note = (f"Candidates: {', '.join(f'{label} ({path})' for label, path in zip(sweeps, results_files))}. Rule: "
            f"{selection['rule']}; each job's own epoch was chosen on validation AUC too. Test scores are mean ± std "
            f"over seeds at that epoch; the selected sweep is in bold.")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "selection.json", {**selection, "results_files": results_files,
                                                   "git_commit": git_commit()})
    markdown = format_selection(selection, "Link prediction: settings chosen on validation", note)
    (out_dir / "selection.md").write_text(markdown)
    return markdown
