"""The comparison table: ROC-AUC under both protocols, speed, and the published figures beside them."""

from __future__ import annotations

from typing import Any

import numpy as np

from gsrl.stats import mean_std, paired_difference

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
            "honest_auc": protocols["honest"]["auc_mean"], **timing,
            **selection_summary(results.get("selection"))}


def selection_summary(selection: dict[str, Any] | None) -> dict[str, Any]:
    """What a run's policy chose: its entropy in the first and last tenth of the run relative to the maximum
    ln(candidate pairs) (1 = uniform), and the most selected training property with the share of
    meta-batches that selected it. Runs recorded before selections were kept give None."""
    if not selection or not selection["selected"]:
        return {"entropy_first": None, "entropy_last": None, "most_selected": None, "most_selected_share": None}
    meta_batches = selection["meta_batches"]
    top = int(np.argmax(selection["selected"]))

    def relative(tenth: int) -> float | None:
        entropy, maximum = selection["entropy_by_tenth"][tenth], selection["entropy_max_by_tenth"][tenth]
        return None if entropy is None or not maximum else entropy / maximum

    return {"entropy_first": relative(0), "entropy_last": relative(-1), "most_selected": selection["properties"][top],
            "most_selected_share": selection["selected"][top] / meta_batches if meta_batches else None}


def summarize(records: list[dict[str, Any]], columns: list[str], reference: str | None = None) -> dict[str, Any]:
    """Per column: both protocols' ROC-AUC (mean ± std over seeds), wall time and meta-iterations/s, what its
    policy selected, and, given a reference column, the difference from it paired by seed with its 95 %
    confidence interval."""
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
            "entropy_first": _mean_of(runs, "entropy_first"), "entropy_last": _mean_of(runs, "entropy_last"),
            "most_selected": _most_selected(runs),
        }
        if reference is not None:
            base = [r for r in records if r["column"] == reference]
            cells[column]["versus_reference"] = {
                protocol: paired_difference(
                    {r["seed"]: r[f"{protocol}_auc"] for r in runs if r[f"{protocol}_auc"] is not None},
                    {r["seed"]: r[f"{protocol}_auc"] for r in base if r[f"{protocol}_auc"] is not None})
                for protocol in ("paper", "honest")}
    return {"columns": columns, "cells": cells, "reference": reference}


def _mean_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def _most_selected(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The property most often the runs' top pick (ties: the larger share), with the mean share of meta-batches
    that selected it in those runs."""
    tops = [r["most_selected"] for r in runs if r.get("most_selected") is not None]
    if not tops:
        return None
    def share(name: str) -> float:
        return float(np.mean([r["most_selected_share"] for r in runs if r.get("most_selected") == name]))

    name = max(sorted(set(tops)), key=lambda n: (tops.count(n), share(n)))  # ties: the larger share, then by name
    return {"property": name, "runs": tops.count(name), "share": share(name)}


def _auc(summary: dict[str, Any]) -> str:
    if summary["mean"] is None:
        return "—"
    return f"{100 * summary['mean']:.2f} ± {100 * summary['std']:.2f} (n={summary['seeds']})"


def _difference(paired: dict[str, Any]) -> str:
    if paired["mean"] is None:
        return "—"
    text = f"{100 * paired['mean']:+.2f}"
    if paired["ci"] is not None:
        text += " [{:+.2f}, {:+.2f}]".format(*(100 * bound for bound in paired["ci"]))
    return text + f" (n={paired['pairs']})"


def _relative(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def format_markdown(summary: dict[str, Any], title: str, note: str) -> str:
    """The results table; with a reference column, a second table of paired differences from it and of what
    each policy selected."""
    lines = [f"# {title}", "", note, "",
             "| Algorithm | Paper protocol ROC-AUC | Honest ROC-AUC | Published | Wall time / run | Meta-it/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for column in summary["columns"]:
        cell = summary["cells"][column]
        published = "—" if cell["published"] is None else "{:.2f} ({})".format(*cell["published"])
        wall = "—" if cell["wall_seconds"] is None else f"{cell['wall_seconds'] / 60:.1f} min"
        speed = "—" if cell["meta_iterations_per_s"] is None else f"{cell['meta_iterations_per_s']:.3f}"
        lines.append(f"| {column} | {_auc(cell['paper'])} | {_auc(cell['honest'])} | {published} | {wall} | {speed} |")
    reference = summary.get("reference")
    if reference is not None:
        lines += ["", f"## Paired by seed: difference from {reference} (ROC-AUC points, mean [95 % CI])", "",
                  "Entropy: the policy's selection entropy over ln(candidate pairs), mean over seeds, in the first "
                  "and the last tenth of the run (1 = uniform). Most selected: the training property most runs "
                  "picked most often (in how many of the runs), and the share of meta-batches that selected it.", "",
                  "| Algorithm | Paper protocol Δ | Honest Δ | Entropy, first tenth | Entropy, last tenth "
                  "| Most selected |", "|---|---:|---:|---:|---:|---|"]
        for column in summary["columns"]:
            cell = summary["cells"][column]
            versus = cell["versus_reference"]
            top = cell["most_selected"]
            runs = len(cell["honest"]["values"])
            most = ("—" if top is None else
                    f"{top['property']} ({top['runs']} of {runs} runs, {100 * top['share']:.0f} %)")
            lines.append(f"| {column} | {_difference(versus['paper'])} | {_difference(versus['honest'])} "
                         f"| {_relative(cell['entropy_first'])} | {_relative(cell['entropy_last'])} | {most} |")
    return "\n".join(lines) + "\n"
