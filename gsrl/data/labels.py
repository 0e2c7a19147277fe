"""Reading a labelled CSV (plain or gzipped): SMILES and label columns by name, cells -> floats.

Label names may hold commas (SIDER's do), so the csv module reads the file; a cell that is not
one of the accepted values is an error naming file, data row and column. Two label conventions
exist: the few-shot benchmarks use ``0``/``1`` with empty cells missing (:data:`LABEL_VALUES`);
:func:`read_label_table` also accepts ``-1``/``1`` with ``0`` missing (the convention pretrain-gnns
stores internally), decided per file: as soon as any label cell is ``-1``.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Columns that are neither SMILES nor labels in some MoleculeNet copies (DeepChem's PCBA).
_ID_COLUMNS = frozenset({"mol_id"})

LABEL_VALUES: dict[str, float] = {"": math.nan, "0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0}

# LABEL_VALUES plus -1: read_label_table maps a file's cells through these, then picks the convention.
SIGNED_LABEL_VALUES: dict[str, float] = {
    "": np.nan, "0": 0.0, "1": 1.0, "-1": -1.0, "0.0": 0.0, "1.0": 1.0, "-1.0": -1.0,
}


@dataclass(frozen=True)
class TableColumns:
    """Which columns of a CSV hold the SMILES and the labels, by header name."""

    smiles_column: str
    label_columns: tuple[str, ...] | None  # None: every column but SMILES / id columns


@dataclass
class LabelTable:
    """Label table of a source CSV, before SMILES parsing."""

    property_names: list[str]
    smiles: list[str]
    rows: list[int]  # 1-based data row numbers
    labels: np.ndarray  # float32 [n_rows, n_properties]


def open_text(path: Path) -> io.TextIOBase:
    """Open a CSV as text, gunzipping when the file starts with the gzip magic bytes."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def column_indices(path: Path, header: list[str], spec: TableColumns) -> tuple[int, list[int]]:
    """Positions of the SMILES column and the label columns, found by name."""
    position = {name.strip(): i for i, name in enumerate(header)}
    if spec.smiles_column not in position:
        raise ValueError(f"{path}: no SMILES column {spec.smiles_column!r} in the header")
    if spec.label_columns is None:
        skip = {spec.smiles_column} | _ID_COLUMNS
        labels = [name.strip() for name in header if name.strip() not in skip]
    else:
        labels = list(spec.label_columns)
    missing = [name for name in labels if name not in position]
    if missing:
        raise ValueError(f"{path}: label columns missing from the header: {missing[:5]}")
    return position[spec.smiles_column], [position[name] for name in labels]


def _label_value(path: Path, row_number: int, column: str, cell: str, cell_values: Mapping[str, float]) -> float:
    """One label cell through `cell_values`; anything else is a data error naming file, row and column."""
    value = cell_values.get(cell.strip())
    if value is None:
        accepted = ", ".join(key or "empty" for key in cell_values)
        raise ValueError(f"{path}: data row {row_number}, column {column!r}: label {cell!r} is not one of {accepted}")
    return value


def _parse_label_row(path: Path, row_number: int, row: list[str], columns: list[int], header: list[str],
                     cell_values: Mapping[str, float]) -> list[float]:
    """Label cells of one row; the fast dictionary lookup covers all well-formed cells."""
    values = [cell_values.get(row[j]) for j in columns]
    if None in values:  # slow path: tolerate whitespace, report the first bad cell
        values = [_label_value(path, row_number, header[j], row[j], cell_values) for j in columns]
    return values  # type: ignore[return-value]


def data_rows(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows numbered from 1."""
    number = 0
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        number += 1
        yield number, row


def read_table(path: Path, spec: TableColumns, cell_values: Mapping[str, float] = LABEL_VALUES) -> LabelTable:
    """Read SMILES and labels of every data row (csv module: label names may hold commas); each label
    cell is mapped through `cell_values` (default: 1 / 0 / empty)."""
    with open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file, expected a header row")
        smiles_col, label_cols = column_indices(path, header, spec)
        width = max([smiles_col, *label_cols]) + 1
        smiles, rows, labels = [], [], []
        for number, row in data_rows(reader):
            if len(row) < width:
                raise ValueError(f"{path}: data row {number} has {len(row)} cells, expected {len(header)}")
            smiles.append(row[smiles_col].strip())
            rows.append(number)
            labels.append(_parse_label_row(path, number, row, label_cols, header, cell_values))
    names = [header[j].strip() for j in label_cols]
    table = np.array(labels, dtype=np.float32).reshape(len(rows), len(names))
    return LabelTable(names, smiles, rows, table)


def select_rows(table: LabelTable, keep: np.ndarray) -> LabelTable:
    """The rows of ``table`` where the boolean mask ``keep`` is true."""
    kept = np.flatnonzero(keep)
    return LabelTable(
        table.property_names,
        [table.smiles[i] for i in kept],
        [table.rows[i] for i in kept],
        np.ascontiguousarray(table.labels[keep]),
    )


def _to_binary(raw: np.ndarray) -> np.ndarray:
    """Raw cell values -> 1 / 0 / nan, choosing the file's convention (see module docstring)."""
    if not (raw == -1).any():
        return raw
    labels = np.where(raw == 0, np.nan, raw)
    labels[labels == -1] = 0.0
    return labels.astype(np.float32)


def read_label_table(path: Path, spec: TableColumns) -> LabelTable:
    """SMILES and 1/0/nan labels of every data row of a CSV (plain or gzipped), in either convention."""
    table = read_table(path, spec, SIGNED_LABEL_VALUES)
    return dataclasses.replace(table, labels=_to_binary(table.labels))
