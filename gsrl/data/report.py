"""Summary of a loaded few-shot dataset: parsing outcome and per-property label counts.

Used by ``gsrl data report`` so that users can check a data folder before training
(e.g. how many SMILES their RDKit version rejects, how imbalanced each task is).
"""

from __future__ import annotations

from typing import Any

import torch

from gsrl.data.datasets import FewShotDataset


def _property_counts(ds: FewShotDataset) -> list[dict[str, Any]]:
    """Active / inactive / missing counts of every property, in column order."""
    labels = ds.labels
    active = (labels == 1).sum(dim=0).tolist()
    inactive = (labels == 0).sum(dim=0).tolist()
    missing = torch.isnan(labels).sum(dim=0).tolist()
    test = set(ds.test_properties)
    train = set(ds.train_properties)
    rows = []
    for i, name in enumerate(ds.property_names):
        split = "test" if i in test else "train" if i in train else "unused"
        counts = {"active": active[i], "inactive": inactive[i], "missing": missing[i]}
        rows.append({"name": name, "split": split, **counts})
    return rows


def dataset_report(ds: FewShotDataset) -> dict[str, Any]:
    """Plain-data summary (JSON-serialisable) of one dataset."""
    report = ds.parse_report
    return {
        "name": ds.name,
        **report.summary(),
        "failed_examples": [{"row": row, "smiles": smiles} for row, smiles in report.failed_examples],
        "num_train_properties": len(ds.train_properties),
        "num_test_properties": len(ds.test_properties),
        "properties": _property_counts(ds),
    }


def _table(headers: list[str], rows: list[list[str]], right_aligned: set[int]) -> list[str]:
    """Fixed-width text table lines."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right_aligned else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def format_report(report: dict[str, Any]) -> str:
    """Human-readable text of :func:`dataset_report`'s result."""
    lines = [
        f"Dataset:  {report['name']}",
        f"Source:   {report['source_file']}",
        f"Rows:     {report['rows']}  (parsed {report['parsed']}, failed {report['failed']})",
        f"Tasks:    {report['num_train_properties']} meta-train, {report['num_test_properties']} meta-test",
    ]
    if report["failed_examples"]:
        lines.append("Unparsable SMILES (row: smiles):")
        lines += [f"  {e['row']}: {e['smiles']}" for e in report["failed_examples"]]
        hidden = report["failed"] - len(report["failed_examples"])
        if hidden > 0:
            lines.append(f"  ... and {hidden} more")
    lines.append("")
    rows = [
        [str(i), p["name"], p["split"], str(p["active"]), str(p["inactive"]), str(p["missing"])]
        for i, p in enumerate(report["properties"])
    ]
    lines += _table(["#", "property", "split", "active", "inactive", "missing"], rows, {0, 3, 4, 5})
    return "\n".join(lines)
