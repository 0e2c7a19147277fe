"""Few-shot molecular property datasets (GS-Meta benchmarks) as labels + cached graphs.

A dataset is read from a MoleculeNet CSV under the data root, its SMILES are featurized
once (see :mod:`gsrl.data.featurize`) and everything derived from the CSV (graphs,
labels, SMILES, row numbers, parse report) is cached in one file under ``cache_dir``.
The cache file name holds the dataset name, the featurizer version and the sha256 of
the source CSV, so editing the CSV or the featurizer rebuilds it, and a warm load does
no RDKit work at all.

The meta-train/meta-test task split comes from ``moleculenet/fewshot_tasks.json``;
when that file is absent, Tox21/SIDER/MUV/PCBA fall back to GS-Meta's documented
rule (first ``n_train`` label columns train, next ``n_test`` test; PCBA tests on
columns 0-4 and 123-127).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data, InMemoryDataset
from torch_geometric.data.separate import separate

from gsrl.data.download import file_sha256
from gsrl.data.featurize import FEATURIZER_VERSION, mol_to_arrays, parse_smiles

logger = logging.getLogger(__name__)

FEWSHOT_DATASETS: tuple[str, ...] = (
    "tox21",
    "sider",
    "muv",
    "pcba",
    "toxcast-APR",
    "toxcast-ATG",
    "toxcast-BSK",
    "toxcast-CEETOX",
    "toxcast-CLD",
    "toxcast-NVS",
    "toxcast-OT",
    "toxcast-TOX21",
    "toxcast-Tanguay",
)

TASKS_FILE = "moleculenet/fewshot_tasks.json"
DATA_ROOT_ENV = "GSRL_DATA_ROOT"
MAX_FAILED_EXAMPLES = 10

# Version of the cache file layout itself (independent of the featurizer version).
_CACHE_FORMAT = 1

# Columns that are neither SMILES nor labels in some MoleculeNet copies (DeepChem's PCBA).
_ID_COLUMNS = frozenset({"mol_id"})

LABEL_VALUES: dict[str, float] = {"": math.nan, "0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0}

_DOWNLOAD_HINT = (
    "Download the benchmark files with `gsrl data download`, or point the data root "
    f"(config `data_root` or env {DATA_ROOT_ENV}) at a folder that holds them."
)


class DataFileMissing(FileNotFoundError):
    """A data file the loader needs is not on disk; the message says how to get it."""

    def __init__(self, path: str | Path, hint: str = _DOWNLOAD_HINT) -> None:
        self.path = Path(path)
        super().__init__(f"Data file not found: {self.path}. {hint}")


class DataRootNotConfigured(ValueError):
    """Neither the configuration nor the environment names a data root."""


@dataclass
class ParseReport:
    """What happened when a source CSV was turned into molecules."""

    source_file: str
    rows: int  # data rows read (header excluded; for toxcast-* only rows with a label)
    parsed: int
    failed: int
    failed_examples: list[tuple[int, str]]  # (1-based data row number, smiles), at most 10


# --------------------------------------------------------------------------- graphs


def _concat_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])`` without a Python loop."""
    exclusive_cumsum = np.cumsum(counts) - counts
    return np.arange(counts.sum(), dtype=np.int64) + np.repeat(starts - exclusive_cumsum, counts)


def _pointer(counts: np.ndarray) -> np.ndarray:
    """Offsets ``[0, c0, c0 + c1, ...]`` of consecutive blocks with the given sizes."""
    return np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(counts, dtype=np.int64)])


class MoleculeGraphs(InMemoryDataset):
    """All molecule graphs of one dataset, collated once and cached on disk.

    Storage is PyG's in-memory layout: node and edge tensors of every molecule
    concatenated, ``edge_index`` kept local to each molecule, and ``slices`` giving
    where each molecule starts. ``graphs[i]`` is molecule ``i`` as a ``Data``.
    """

    def __init__(self, data: Data, slices: dict[str, Tensor]) -> None:
        super().__init__(root=None, log=False)
        self._data = data
        self.slices = slices
        # NumPy views of the same memory for collate_ids: NumPy's small-array index
        # arithmetic is single-threaded and cheap, while torch.repeat_interleave can
        # stall for milliseconds in its thread pool on a busy machine.
        self._arrays = {
            "x": data.x.numpy(),
            "edge_index": data.edge_index.numpy(),
            "edge_attr": data.edge_attr.numpy(),
            "node_ptr": slices["x"].numpy(),
            "edge_ptr": slices["edge_index"].numpy(),
        }

    @classmethod
    def from_tensors(
        cls, x: Tensor, edge_index: Tensor, edge_attr: Tensor, node_ptr: Tensor, edge_ptr: Tensor
    ) -> MoleculeGraphs:
        """Build from concatenated features and per-molecule start offsets."""
        data = Data(x=x, edge_index=edge_index, edge_attr=edge_attr)
        slices = {"x": node_ptr, "edge_index": edge_ptr, "edge_attr": edge_ptr}
        return cls(data, slices)

    @classmethod
    def from_graphs(cls, graphs: Sequence[Data]) -> MoleculeGraphs:
        """Build from per-molecule ``Data`` objects (convenient for small sets)."""
        node_counts = np.array([g.num_nodes for g in graphs], dtype=np.int64)
        edge_counts = np.array([g.edge_index.size(1) for g in graphs], dtype=np.int64)
        return cls.from_tensors(
            x=torch.cat([g.x for g in graphs]).reshape(-1, 2),
            edge_index=torch.cat([g.edge_index for g in graphs], dim=1).reshape(2, -1),
            edge_attr=torch.cat([g.edge_attr for g in graphs]).reshape(-1, 2),
            node_ptr=torch.from_numpy(_pointer(node_counts)),
            edge_ptr=torch.from_numpy(_pointer(edge_counts)),
        )

    def get(self, idx: int) -> Data:
        """Molecule ``idx``, sliced out of the stored tensors each time. (``InMemoryDataset.get`` also keeps
        a copy of every molecule it returns, which grows by gigabytes over a pretraining epoch.)"""
        return separate(cls=Data, batch=self._data, idx=idx, slice_dict=self.slices, decrement=False)

    def to_tensors(self) -> dict[str, Tensor]:
        """The tensors :meth:`from_tensors` needs, e.g. to write a cache file."""
        return {
            "x": self._data.x,
            "edge_index": self._data.edge_index,
            "edge_attr": self._data.edge_attr,
            "node_ptr": self.slices["x"],
            "edge_ptr": self.slices["edge_index"],
        }

    def collate_ids(self, ids: Sequence[int] | np.ndarray | Tensor) -> Batch:
        """Batch the given molecules, equal to ``Batch.from_data_list([self[i] for i in ids])``.

        This runs on every training step, so it slices the stored arrays directly
        instead of materialising one ``Data`` per molecule. Ids may repeat.
        """
        ids = self._molecule_ids(ids)
        arrays = self._arrays
        node_start, edge_start = arrays["node_ptr"][ids], arrays["edge_ptr"][ids]
        node_count = arrays["node_ptr"][ids + 1] - node_start
        edge_count = arrays["edge_ptr"][ids + 1] - edge_start

        node_idx = _concat_ranges(node_start, node_count)
        edge_idx = _concat_ranges(edge_start, edge_count)
        batch_ptr = _pointer(node_count)
        edge_batch_ptr = _pointer(edge_count)
        node_offset = batch_ptr[:-1]
        # np.take is several times faster than fancy indexing on these 2-D arrays.
        edge_index = np.take(arrays["edge_index"], edge_idx, axis=1)
        edge_index += np.repeat(node_offset, edge_count)

        batch = Batch(
            x=torch.from_numpy(np.take(arrays["x"], node_idx, axis=0)),
            edge_index=torch.from_numpy(edge_index),
            edge_attr=torch.from_numpy(np.take(arrays["edge_attr"], edge_idx, axis=0)),
            batch=torch.from_numpy(np.repeat(np.arange(len(ids), dtype=np.int64), node_count)),
            ptr=torch.from_numpy(batch_ptr),
        )
        # Bookkeeping that lets Batch.to_data_list / index_select work as usual.
        edge_ptr_t = torch.from_numpy(edge_batch_ptr)
        zeros = torch.zeros(len(ids), dtype=torch.long)
        batch._num_graphs = len(ids)
        batch._slice_dict = {"x": batch.ptr, "edge_index": edge_ptr_t, "edge_attr": edge_ptr_t}
        batch._inc_dict = {"x": zeros, "edge_index": torch.from_numpy(node_offset), "edge_attr": zeros}
        return batch

    def _molecule_ids(self, ids: Sequence[int] | np.ndarray | Tensor) -> np.ndarray:
        """Ids as an int64 array into the full storage, bounds-checked."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise IndexError(f"molecule ids must lie in [0, {len(self)}), got {ids.min()}..{ids.max()}")
        if self._indices is not None:  # a view made by dataset[...]: map to stored ids
            ids = np.asarray(self.indices(), dtype=np.int64)[ids]
        return ids


# --------------------------------------------------------------------------- dataset


def check_sizes(name: str, smiles: Sequence[str], labels: Tensor, graphs: MoleculeGraphs,
                label_names: Sequence[str]) -> None:
    """One molecule per SMILES, one graph and one label row per molecule, one column per label name."""
    n = len(smiles)
    if tuple(labels.shape) != (n, len(label_names)) or len(graphs) != n:
        raise ValueError(f"{name}: inconsistent sizes: {n} smiles, labels {tuple(labels.shape)}, "
                         f"{len(graphs)} graphs, {len(label_names)} label columns")


@dataclass(eq=False)
class FewShotDataset:
    """Molecules, labels and the meta-train/meta-test task split of one benchmark."""

    name: str
    property_names: list[str]
    train_properties: list[int]
    test_properties: list[int]
    smiles: list[str]
    source_rows: list[int]
    labels: Tensor  # float32 [n_molecules, n_properties]; 1 active, 0 inactive, nan missing
    graphs: MoleculeGraphs
    parse_report: ParseReport
    _members: dict[int, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        check_sizes(self.name, self.smiles, self.labels, self.graphs, self.property_names)

    @property
    def num_molecules(self) -> int:
        return len(self.smiles)

    @property
    def num_properties(self) -> int:
        return len(self.property_names)

    def class_members(self, prop: int) -> tuple[np.ndarray, np.ndarray]:
        """(inactive ids, active ids) of one property; molecules with a missing label are in neither."""
        if prop not in self._members:
            column = self.labels[:, prop].numpy()
            inactive = np.flatnonzero(column == 0).astype(np.int64)
            active = np.flatnonzero(column == 1).astype(np.int64)
            self._members[prop] = (inactive, active)
        return self._members[prop]


# --------------------------------------------------------------------------- task layout


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's data lives and how its label columns split into tasks."""

    name: str
    source: str  # path relative to the data root
    smiles_column: str
    label_columns: tuple[str, ...] | None  # None: every column but SMILES / id columns
    train_properties: tuple[int, ...]
    test_properties: tuple[int, ...]
    require_any_label: bool  # derived sub-datasets keep only rows with a label


def _split_by_count(n_train: int, n_test: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(range(n_train)), tuple(range(n_train, n_train + n_test))


_PCBA_TEST = (0, 1, 2, 3, 4, 123, 124, 125, 126, 127)

# GS-Meta's split rule, used when fewshot_tasks.json is not available.
_FALLBACK_SPECS: dict[str, DatasetSpec] = {
    "tox21": DatasetSpec("tox21", "moleculenet/tox21.csv", "smiles", None, *_split_by_count(9, 3), False),
    "sider": DatasetSpec("sider", "moleculenet/sider.csv", "smiles", None, *_split_by_count(21, 6), False),
    "muv": DatasetSpec("muv", "moleculenet/muv.csv.gz", "smiles", None, *_split_by_count(12, 5), False),
    "pcba": DatasetSpec(
        "pcba",
        "moleculenet/pcba.csv.gz",
        "smiles",
        None,
        tuple(i for i in range(128) if i not in _PCBA_TEST),
        _PCBA_TEST,
        False,
    ),
}

_PCBA_HINT = (
    "PCBA has no download source with a known checksum; place the 128-task MoleculeNet "
    "pcba.csv.gz (a `smiles` column plus 128 label columns) there yourself."
)


def _smiles_column(entry: dict[str, Any], entries: dict[str, Any]) -> str:
    """An entry's SMILES column; derived entries inherit the one of their parent file."""
    if "smiles_column" in entry:
        return entry["smiles_column"]
    for other in entries.values():
        if other.get("file") == entry.get("derive_from") and "smiles_column" in other:
            return other["smiles_column"]
    return "smiles"


def _spec_from_json(name: str, entry: dict[str, Any], smiles_column: str) -> DatasetSpec:
    """Spec of a fewshot_tasks.json entry; task names are mapped to column indices."""
    labels = list(entry["label_columns"])
    split = entry["gsmeta_split"]
    position = {column: i for i, column in enumerate(labels)}
    try:
        train = tuple(position[t] for t in split["train_tasks"])
        test = tuple(position[t] for t in split["test_tasks"])
    except KeyError as err:
        raise ValueError(f"{TASKS_FILE}: task {err} of {name!r} is not one of its label_columns") from None
    derived = "derive_from" in entry
    return DatasetSpec(
        name=name,
        source=entry["derive_from"] if derived else entry["file"],
        smiles_column=smiles_column,
        label_columns=tuple(labels),
        train_properties=train,
        test_properties=test,
        require_any_label=derived,
    )


def _is_usable_entry(entry: dict[str, Any]) -> bool:
    has_source = "file" in entry or "derive_from" in entry
    return has_source and "label_columns" in entry and "train_tasks" in entry.get("gsmeta_split", {})


def _resolve_spec(name: str, data_root: Path) -> DatasetSpec:
    """Look the dataset up in fewshot_tasks.json, else in the built-in GS-Meta rules."""
    tasks_path = data_root / TASKS_FILE
    entries: dict[str, Any] = {}
    if tasks_path.is_file():
        entries = json.loads(tasks_path.read_text(encoding="utf-8")).get("datasets", {})
    entry = entries.get(name)
    if entry is not None and _is_usable_entry(entry):
        return _spec_from_json(name, entry, _smiles_column(entry, entries))
    if name in _FALLBACK_SPECS:
        return _FALLBACK_SPECS[name]
    if not tasks_path.is_file() and name.startswith("toxcast-"):
        raise DataFileMissing(
            tasks_path,
            f"The {name} task layout is defined only in {TASKS_FILE}; it ships with the "
            "gsrl data folder (it cannot be downloaded separately).",
        )
    known = sorted(set(FEWSHOT_DATASETS) | {k for k, v in entries.items() if _is_usable_entry(v)})
    raise ValueError(f"Unknown few-shot dataset {name!r}; known: {', '.join(known)}")


# --------------------------------------------------------------------------- CSV reading


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


def column_indices(path: Path, header: list[str], spec: DatasetSpec) -> tuple[int, list[int]]:
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


def read_table(path: Path, spec: DatasetSpec, cell_values: Mapping[str, float] = LABEL_VALUES) -> LabelTable:
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


# --------------------------------------------------------------------------- featurization


def featurize_smiles(
    smiles_list: Sequence[str], rows: Sequence[int], source_file: str, name: str
) -> tuple[MoleculeGraphs, np.ndarray, ParseReport]:
    """Graphs of every parsable SMILES, the mask of parsed entries and the parse report
    (failures named by their row in `source_file`)."""
    xs, edge_indices, edge_attrs = [], [], []
    parsed = np.zeros(len(smiles_list), dtype=bool)
    failed: list[tuple[int, str]] = []
    for i, (smiles, row) in enumerate(zip(smiles_list, rows)):
        mol = parse_smiles(smiles)
        if mol is None or mol.GetNumAtoms() == 0:
            failed.append((row, smiles))
            continue
        x, edge_index, edge_attr = mol_to_arrays(mol)
        xs.append(x)
        edge_indices.append(edge_index)
        edge_attrs.append(edge_attr)
        parsed[i] = True
    graphs = MoleculeGraphs.from_tensors(
        x=torch.from_numpy(np.concatenate(xs or [np.zeros((0, 2), np.int64)])),
        edge_index=torch.from_numpy(np.concatenate(edge_indices or [np.zeros((2, 0), np.int64)], axis=1)),
        edge_attr=torch.from_numpy(np.concatenate(edge_attrs or [np.zeros((0, 2), np.int64)])),
        node_ptr=torch.from_numpy(_pointer(np.array([len(x) for x in xs], dtype=np.int64))),
        edge_ptr=torch.from_numpy(_pointer(np.array([e.shape[1] for e in edge_indices], dtype=np.int64))),
    )
    report = ParseReport(
        source_file=source_file,
        rows=len(smiles_list),
        parsed=int(parsed.sum()),
        failed=len(failed),
        failed_examples=failed[:MAX_FAILED_EXAMPLES],
    )
    if failed:
        logger.warning(
            "%s: RDKit could not parse %d of %d SMILES in %s; they are skipped (first rows: %s)",
            name, len(failed), report.rows, source_file, ", ".join(str(r) for r, _ in failed[:5]),
        )
    return graphs, parsed, report


# --------------------------------------------------------------------------- cache


def cache_path(cache_dir: Path, name: str, source_sha256: str) -> Path:
    """Processed-file path; it changes with the dataset, featurizer and source content."""
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return cache_dir / f"{safe_name}-{FEATURIZER_VERSION}-{source_sha256}.pt"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to a temp file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def cache_record(
    name: str, sha: str, table: LabelTable, graphs: MoleculeGraphs, report: ParseReport
) -> dict[str, Any]:
    """Everything a warm load needs, in types ``torch.load(weights_only=True)`` accepts."""
    return {
        "cache_format": _CACHE_FORMAT,
        "featurizer_version": FEATURIZER_VERSION,
        "dataset": name,
        "source_sha256": sha,
        "property_names": list(table.property_names),
        "smiles": list(table.smiles),
        "source_rows": torch.tensor(table.rows, dtype=torch.long),
        "labels": torch.from_numpy(table.labels),
        "report": {**asdict(report), "failed_examples": [list(e) for e in report.failed_examples]},
        "graphs": graphs.to_tensors(),
    }


def load_cache(path: Path, name: str, sha: str, spec: DatasetSpec) -> dict[str, Any] | None:
    """The cached record when it exists and matches; None means rebuild."""
    if not path.is_file():
        return None
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file is rebuilt, not fatal
        logger.warning("Ignoring unreadable cache file %s (%s); rebuilding", path, err)
        return None
    expected = {
        "cache_format": _CACHE_FORMAT,
        "featurizer_version": FEATURIZER_VERSION,
        "dataset": name,
        "source_sha256": sha,
    }
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in expected.items()):
        return None
    if spec.label_columns is not None and record["property_names"] != list(spec.label_columns):
        return None
    return record


def _build_record(name: str, source: Path, sha: str, spec: DatasetSpec) -> dict[str, Any]:
    """Read and featurize the source CSV; keep only rows RDKit can parse."""
    table = read_table(source, spec)
    if spec.require_any_label:  # the toxcast-* derivation rule
        table = select_rows(table, ~np.isnan(table.labels).all(axis=1))
    expected_labels = len(spec.train_properties) + len(spec.test_properties)
    if spec.label_columns is None and len(table.property_names) != expected_labels:
        raise ValueError(
            f"{source}: expected {expected_labels} label columns for {name}, "
            f"found {len(table.property_names)}"
        )
    graphs, parsed, report = featurize_smiles(table.smiles, table.rows, str(source), name)
    return cache_record(name, sha, select_rows(table, parsed), graphs, report)


def _dataset_from_record(record: dict[str, Any], spec: DatasetSpec, source: Path) -> FewShotDataset:
    report = dict(record["report"])
    report["failed_examples"] = [(int(r), str(s)) for r, s in report["failed_examples"]]
    report["source_file"] = str(source)
    return FewShotDataset(
        name=spec.name,
        property_names=list(record["property_names"]),
        train_properties=list(spec.train_properties),
        test_properties=list(spec.test_properties),
        smiles=list(record["smiles"]),
        source_rows=record["source_rows"].tolist(),
        labels=record["labels"],
        graphs=MoleculeGraphs.from_tensors(**record["graphs"]),
        parse_report=ParseReport(**report),
    )


# --------------------------------------------------------------------------- public entry points


def load_fewshot_dataset(name: str, data_root: str | Path, cache_dir: str | Path) -> FewShotDataset:
    """Load a few-shot benchmark, featurizing it on first use and caching the result."""
    data_root, cache_dir = Path(data_root), Path(cache_dir)
    spec = _resolve_spec(name, data_root)
    source = data_root / spec.source
    if not source.is_file():
        raise DataFileMissing(source, _PCBA_HINT if name == "pcba" else _DOWNLOAD_HINT)
    sha = file_sha256(source)
    path = cache_path(cache_dir, name, sha)
    record = load_cache(path, name, sha, spec)
    if record is None:
        logger.info("Featurizing %s from %s (cache %s)", name, source, path)
        record = _build_record(name, source, sha, spec)
        atomic_torch_save(record, path)
    return _dataset_from_record(record, spec, source)


def resolve_data_root(configured: str | Path | None) -> Path:
    """The configured data root, else ``$GSRL_DATA_ROOT``; error naming both when neither is set."""
    if configured not in (None, ""):
        return Path(configured).expanduser()
    from_env = os.environ.get(DATA_ROOT_ENV, "")
    if from_env:
        return Path(from_env).expanduser()
    raise DataRootNotConfigured(
        f"No data root configured: set `data_root` in the configuration or the {DATA_ROOT_ENV} "
        "environment variable to the folder that holds moleculenet/."
    )
