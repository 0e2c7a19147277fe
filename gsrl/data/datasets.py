"""Few-shot molecular property datasets (GS-Meta benchmarks): molecules, labels and a task split.

A few-shot dataset is a :class:`~gsrl.data.molecule_table.MoleculeTable` (a MoleculeNet CSV
under the data root, featurized once and cached, see that module) plus the split of its label
columns into meta-train and meta-test tasks. A dataset's layout (source file, label columns,
task split) is looked up in this order, and nowhere else:

1. its entry in ``moleculenet/fewshot_tasks.json`` under the data root, when that entry is usable
   (a ``file`` or ``derive_from``, ``label_columns`` and ``gsmeta_split.train_tasks``). Any usable
   entry is a dataset, also one the registry does not name (e.g. a user's own CSV).
2. the built-in layout of its :data:`FEWSHOT_REGISTRY` entry: GS-Meta's documented rule (first
   ``n_train`` label columns train, next ``n_test`` test; PCBA tests on columns 0-4 and 123-127).
   The ``toxcast-*`` entries have none: their layout exists only in the tasks file.

:func:`register_fewshot_dataset` adds a benchmark to the registry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gsrl.data.labels import LabelTable, TableColumns, read_table, select_rows
from gsrl.data.molecule_table import MoleculeTable
from gsrl.data.registry import register, unknown_name
from gsrl.data.roots import DOWNLOAD_HINT, DataFileMissing

TASKS_FILE = "moleculenet/fewshot_tasks.json"


@dataclass(eq=False)
class FewShotDataset(MoleculeTable):
    """Molecules, labels and the meta-train/meta-test task split of one benchmark."""

    train_properties: list[int]
    test_properties: list[int]
    _members: dict[int, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False
    )

    # Each label column is one property, i.e. one few-shot task.
    property_names = MoleculeTable.label_names_alias()
    num_properties = MoleculeTable.num_labels

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

    @property
    def columns(self) -> TableColumns:
        """The columns to read from the source."""
        return TableColumns(self.smiles_column, self.label_columns)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class FewShotEntry:
    """A few-shot benchmark gsrl knows by name."""

    name: str
    # GS-Meta's layout, used when fewshot_tasks.json has no usable entry; None: only that file defines it.
    layout: DatasetSpec | None
    missing_hint: str = DOWNLOAD_HINT  # how to get the source file, said when it is absent


FEWSHOT_REGISTRY: dict[str, FewShotEntry] = {}


def register_fewshot_dataset(entry: FewShotEntry) -> FewShotEntry:
    """Add a benchmark to :data:`FEWSHOT_REGISTRY` (names are unique)."""
    return register(FEWSHOT_REGISTRY, entry.name, entry, "few-shot dataset")


def _split_by_count(n_train: int, n_test: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(range(n_train)), tuple(range(n_train, n_train + n_test))


def _gsmeta_layout(name: str, source: str, train: tuple[int, ...], test: tuple[int, ...]) -> DatasetSpec:
    """GS-Meta's layout of a whole MoleculeNet file: every non-SMILES column is a task."""
    return DatasetSpec(name, source, "smiles", None, train, test, False)


_PCBA_TEST = (0, 1, 2, 3, 4, 123, 124, 125, 126, 127)

_PCBA_HINT = (
    "PCBA has no download source with a known checksum; place the 128-task MoleculeNet "
    "pcba.csv.gz (a `smiles` column plus 128 label columns) there yourself."
)

_TOXCAST_ASSAYS = ("APR", "ATG", "BSK", "CEETOX", "CLD", "NVS", "OT", "TOX21", "Tanguay")

for _entry in (
    FewShotEntry("tox21", _gsmeta_layout("tox21", "moleculenet/tox21.csv", *_split_by_count(9, 3))),
    FewShotEntry("sider", _gsmeta_layout("sider", "moleculenet/sider.csv", *_split_by_count(21, 6))),
    FewShotEntry("muv", _gsmeta_layout("muv", "moleculenet/muv.csv.gz", *_split_by_count(12, 5))),
    FewShotEntry(
        "pcba",
        _gsmeta_layout("pcba", "moleculenet/pcba.csv.gz", tuple(i for i in range(128) if i not in _PCBA_TEST),
                       _PCBA_TEST),
        missing_hint=_PCBA_HINT,
    ),
    *(FewShotEntry(f"toxcast-{assay}", None) for assay in _TOXCAST_ASSAYS),
):
    register_fewshot_dataset(_entry)

# The built-in benchmarks, in GS-Meta's order (the shipped configs cover each of them).
FEWSHOT_DATASETS: tuple[str, ...] = tuple(FEWSHOT_REGISTRY)


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
    """The layout of `name`: its fewshot_tasks.json entry, else its registry entry's built-in layout."""
    tasks_path = data_root / TASKS_FILE
    entries: dict[str, Any] = {}
    if tasks_path.is_file():
        entries = json.loads(tasks_path.read_text(encoding="utf-8")).get("datasets", {})
    entry = entries.get(name)
    if entry is not None and _is_usable_entry(entry):
        return _spec_from_json(name, entry, _smiles_column(entry, entries))
    registered = FEWSHOT_REGISTRY.get(name)
    if registered is not None and registered.layout is not None:
        return registered.layout
    if registered is not None and not tasks_path.is_file():
        raise DataFileMissing(
            tasks_path,
            f"The {name} task layout is defined only in {TASKS_FILE}; it ships with the "
            "gsrl data folder (it cannot be downloaded separately).",
        )
    known = sorted(set(FEWSHOT_REGISTRY) | {k for k, v in entries.items() if _is_usable_entry(v)})
    raise unknown_name("few-shot dataset", name, known)


def _read_source(source: Path, spec: DatasetSpec) -> LabelTable:
    """The label table of a source CSV under its layout; only rows RDKit can parse are kept later."""
    table = read_table(source, spec.columns)
    if spec.require_any_label:  # the toxcast-* derivation rule
        table = select_rows(table, ~np.isnan(table.labels).all(axis=1))
    expected_labels = len(spec.train_properties) + len(spec.test_properties)
    if spec.label_columns is None and len(table.property_names) != expected_labels:
        raise ValueError(
            f"{source}: expected {expected_labels} label columns for {spec.name}, "
            f"found {len(table.property_names)}"
        )
    return table


# --------------------------------------------------------------------------- public entry point


def load_fewshot_dataset(name: str, data_root: str | Path, cache_dir: str | Path) -> FewShotDataset:
    """Load a few-shot benchmark, featurizing it on first use and caching the result."""
    data_root, cache_dir = Path(data_root), Path(cache_dir)
    spec = _resolve_spec(name, data_root)
    registered = FEWSHOT_REGISTRY.get(name)
    return FewShotDataset.load(
        spec.name,
        data_root / spec.source,
        cache_dir,
        cache_name=name,
        columns=spec.columns,
        read=lambda source: _read_source(source, spec),
        missing_hint=registered.missing_hint if registered is not None else DOWNLOAD_HINT,
        train_properties=list(spec.train_properties),
        test_properties=list(spec.test_properties),
    )
