"""Pretraining corpora: any SMILES file, featurized once into a sharded, checksummed cache.

A corpus (MOSES' 1.58 M molecules, a ZINC subset, a MoleculeNet CSV, any .smi/.txt file) is cut
into shards of `shard_size` rows, and every shard is featurized on its own, so shards can be built
in parallel (Ray tasks, `actors/corpus_featurizer.py`) and a data-parallel job can load only the
shards of its rank. What a shard holds is the featurizer's business (Hu et al.'s graphs for
pretraining by default; the molecular VGAE brings its own), and the cache folder is keyed by the
featurizer version and the source file's sha256: a changed file or featurizer builds a new one.
A shard is written (atomically) before its report, and a report names the shard's checksum, so an
interrupted build resumes where it stopped.
Unparsable SMILES are counted, their first examples listed with their row, and skipped.
How a file is read (CSV with a header, or one SMILES per line) is its format's: CORPUS_FORMATS,
chosen by the file's suffixes (format_of) or by name.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch_geometric.data import Data

from gsrl.checkpoint import atomic_write_bytes, atomic_write_json, sha256_of
from gsrl.data.features import FEATURIZER_VERSION
from gsrl.data.graphs import MoleculeGraphs
from gsrl.data.labels import TableColumns, open_text, read_label_table
from gsrl.data.registry import lookup, register
from gsrl.data.smiles_graphs import MAX_FAILED_EXAMPLES, ParseReport, featurize_smiles

SMILES_COLUMNS = ("smiles", "SMILES", "Smiles", "mol", "canonical_smiles")

# --------------------------------------------------------------------------- corpus formats


@dataclass(frozen=True)
class CorpusFormat:
    """How one kind of corpus file is read into its SMILES, in row order."""

    suffixes: tuple[str, ...]  # a file with one of these among its suffixes (`a.csv.gz`: .csv, .gz) is of this kind
    read: Callable[[Path, str | None], list[str]]  # (file, SMILES column or None) -> SMILES


def _read_csv_smiles(path: Path, column: str | None) -> list[str]:
    """A CSV (optionally gzipped) with a header names its column (`column`, else the first of
    SMILES_COLUMNS present)."""
    with open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader)
        names = [column] if column else [c for c in SMILES_COLUMNS if c in header]
        if not names or names[0] not in header:
            raise ValueError(f"{path}: no SMILES column (looked for {column or SMILES_COLUMNS}; header {header})")
        index = header.index(names[0])
        return [row[index] for row in reader if row]


def _read_smiles_lines(path: Path, column: str | None) -> list[str]:
    """One SMILES per line (the first whitespace-separated token; a first line reading 'smiles' is a
    header); `column` does not apply."""
    with open_text(path) as handle:
        lines = [line.split()[0] for line in handle if line.strip()]
    if lines and lines[0].lower() == "smiles":
        lines = lines[1:]
    return lines


# name -> format; register_corpus_format adds one. A file whose suffixes match no format is read as
# DEFAULT_CORPUS_FORMAT (MOSES, ZINC and MoleculeNet files are CSVs; .smi / .txt lists are lines).
CORPUS_FORMATS: dict[str, CorpusFormat] = {
    "csv": CorpusFormat((".csv",), _read_csv_smiles),
    "smiles-lines": CorpusFormat((".smi", ".txt"), _read_smiles_lines),
}
DEFAULT_CORPUS_FORMAT = "smiles-lines"


def register_corpus_format(name: str, corpus_format: CorpusFormat) -> CorpusFormat:
    """Add a format to :data:`CORPUS_FORMATS` (names are unique; earlier formats win a suffix)."""
    return register(CORPUS_FORMATS, name, corpus_format, "corpus format")


def corpus_format(name: str) -> CorpusFormat:
    """The format registered as `name`; an unknown name is an error listing the known ones."""
    return lookup(CORPUS_FORMATS, name, "corpus format")


def format_of(path: Path) -> str:
    """Name of the first format claiming one of the file's suffixes, else DEFAULT_CORPUS_FORMAT."""
    suffixes = Path(path).suffixes
    return next((name for name, f in CORPUS_FORMATS.items() if any(s in suffixes for s in f.suffixes)),
                DEFAULT_CORPUS_FORMAT)


def read_smiles(path: Path, column: str | None = None, file_format: str | None = None) -> list[str]:
    """SMILES of a file, in row order, read as `file_format` (a CORPUS_FORMATS name; default: by its
    suffixes, see format_of)."""
    path = Path(path)
    return corpus_format(file_format or format_of(path)).read(path, column)


# --------------------------------------------------------------------------- featurized shards


@dataclass
class FeaturizedShard:
    tensors: dict[str, torch.Tensor]  # what the shard file stores
    kept: np.ndarray  # bool per input SMILES: it became a molecule of the shard
    parse: ParseReport
    skipped: int = 0  # parsed, but outside what the featurizer represents (e.g. too many atoms)


class CorpusFeaturizer(Protocol):
    """Turns one shard's SMILES (with their 1-based file rows) into the tensors of its shard file."""

    version: str  # part of the cache key: a new version builds a new cache

    def __call__(self, smiles: Sequence[str], rows: Sequence[int], source_file: str) -> FeaturizedShard: ...


class HuGraphFeaturizer:
    """Hu et al. 2020 molecular graphs (atom and bond feature indices), what the pretraining strategies read."""

    version = FEATURIZER_VERSION

    def __call__(self, smiles: Sequence[str], rows: Sequence[int], source_file: str) -> FeaturizedShard:
        graphs, kept, parse = featurize_smiles(list(smiles), list(rows), source_file, Path(source_file).name)
        return FeaturizedShard(graphs.to_tensors(), kept, parse)


@dataclass
class ShardReport:
    """One featurized shard: which rows it holds and what parsing them gave."""

    index: int
    start_row: int  # 1-based data row of its first SMILES
    rows: int
    parsed: int
    failed: int
    failed_examples: list[tuple[int, str]]
    file: str
    sha256: str
    skipped: int = 0  # parsed but not representable by the featurizer

    @property
    def molecules(self) -> int:
        """Molecules the shard file holds."""
        return self.parsed - self.skipped


@dataclass
class CorpusManifest:
    source: str
    source_sha256: str
    featurizer_version: str
    shard_size: int
    shards: list[ShardReport]
    task_names: list[str]  # label columns of a labelled corpus (supervised pretraining); empty otherwise

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    @property
    def parsed(self) -> int:
        return sum(s.parsed for s in self.shards)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.shards)

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.shards)

    def failed_examples(self) -> list[tuple[int, str]]:
        return [e for s in self.shards for e in s.failed_examples][:MAX_FAILED_EXAMPLES]


def manifest_from_dict(fields: dict) -> CorpusManifest:
    """Inverse of dataclasses.asdict(manifest) (e.g. after crossing to a Ray worker as plain values)."""
    shards = [ShardReport(**{**s, "failed_examples": [tuple(e) for e in s["failed_examples"]]})
              for s in fields["shards"]]
    return CorpusManifest(**{**fields, "shards": shards})


class CorpusCache:
    """The cache folder of one source file under one featurizer version."""

    def __init__(self, source: Path, cache_dir: Path, shard_size: int = 50_000, column: str | None = None,
                 labels: bool = False, label_columns: Sequence[str] | None = None,
                 featurizer: CorpusFeaturizer | None = None):
        """`labels`: the CSV's label columns (`label_columns`, else every column but SMILES and ids)
        are kept with the molecules, as 1 / 0 / NaN (supervised pretraining). `featurizer`: Hu et al.'s
        graphs when None."""
        if shard_size < 1:
            raise ValueError("shard_size must be >= 1")
        self.source = Path(source)
        self.source_sha256 = sha256_of(self.source)
        self.shard_size = shard_size
        self.column = column
        self.labels = labels
        self.label_columns = tuple(label_columns) if label_columns else None
        self.featurizer = featurizer or HuGraphFeaturizer()
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", self.source.name.split(".")[0])
        kind = f"-labels{len(self.label_columns or ())}" if labels else ""
        self.directory = (Path(cache_dir) / "corpora" /
                          f"{stem}-{self.featurizer.version}-{self.source_sha256[:16]}-{shard_size}{kind}")
        self.task_names: list[str] = []

    def shard_path(self, index: int) -> Path:
        return shard_file(self.directory, index)

    def report_path(self, index: int) -> Path:
        return self.directory / f"shard_{index:05d}.json"

    def read(self) -> tuple[list[str], np.ndarray | None]:
        """The file's SMILES and, for a labelled corpus, its [rows, tasks] label matrix."""
        if not self.labels:
            return read_smiles(self.source, self.column), None
        with open_text(self.source) as handle:
            header = next(csv.reader(handle))
        column = self.column or next((c for c in SMILES_COLUMNS if c in header), None)
        if column is None:
            raise ValueError(f"{self.source}: no SMILES column (looked for {SMILES_COLUMNS}; header {header})")
        table = read_label_table(self.source, TableColumns(column, self.label_columns))
        self.task_names = list(table.property_names)
        return list(table.smiles), np.asarray(table.labels, dtype=np.float32)

    def plan(self, count: int) -> list[tuple[int, int, int]]:
        """(index, start, stop) of every shard of a file with `count` SMILES (0-based positions)."""
        return [(i, start, min(start + self.shard_size, count))
                for i, start in enumerate(range(0, count, self.shard_size))]

    def finished_report(self, index: int) -> ShardReport | None:
        """The shard's report when the shard on disk is complete and matches it."""
        report_file, shard_file = self.report_path(index), self.shard_path(index)
        if not report_file.exists() or not shard_file.exists():
            return None
        fields = json.loads(report_file.read_text())
        fields["failed_examples"] = [tuple(e) for e in fields["failed_examples"]]
        report = ShardReport(**fields)
        return report if sha256_of(shard_file) == report.sha256 else None

    def manifest(self, reports: Sequence[ShardReport]) -> CorpusManifest:
        manifest = CorpusManifest(str(self.source), self.source_sha256, self.featurizer.version, self.shard_size,
                                  sorted(reports, key=lambda r: r.index), list(self.task_names))
        atomic_write_json(self.directory / "manifest.json", asdict(manifest))
        return manifest


def featurize_shard(cache: CorpusCache, index: int, smiles: Sequence[str], start: int,
                    labels: np.ndarray | None = None) -> ShardReport:
    """Featurize one shard's SMILES (positions start.. of the file), with their label rows if any,
    and write shard + report."""
    rows = range(start + 1, start + 1 + len(smiles))
    shard = cache.featurizer(list(smiles), list(rows), str(cache.source))
    path = cache.shard_path(index)
    tensors, parse = shard.tensors, shard.parse
    if labels is not None:
        tensors["y"] = torch.from_numpy(np.ascontiguousarray(labels[shard.kept]))
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    report = ShardReport(index, start + 1, parse.rows, parse.parsed, parse.failed,
                         parse.failed_examples, path.name, sha256_of(path), shard.skipped)
    atomic_write_json(cache.report_path(index), asdict(report))
    return report


def shard_file(directory: Path, index: int) -> Path:
    return Path(directory) / f"shard_{index:05d}.pt"


@dataclass
class CorpusShards:
    """Molecules of some shards, with their labels for a labelled corpus."""

    graphs: MoleculeGraphs
    labels: torch.Tensor | None  # float32 [molecules, tasks], 1 / 0 / NaN

    def __len__(self) -> int:
        return len(self.graphs)

    def molecule(self, index: int) -> Data:
        data = self.graphs[index]
        if self.labels is not None:
            data.y = self.labels[index:index + 1]
        return data


def load_shards(directory: Path, indices: Sequence[int]) -> CorpusShards:
    """The molecules of the given shards of a cache folder (e.g. one data-parallel rank's part; it
    needs only the folder, not the source file)."""
    parts = [torch.load(shard_file(directory, i), weights_only=True) for i in indices]
    node_counts = np.concatenate([np.diff(p["node_ptr"].numpy()) for p in parts])
    edge_counts = np.concatenate([np.diff(p["edge_ptr"].numpy()) for p in parts])
    graphs = MoleculeGraphs.from_tensors(
        x=torch.cat([p["x"] for p in parts]),
        edge_index=torch.cat([p["edge_index"] for p in parts], dim=1),
        edge_attr=torch.cat([p["edge_attr"] for p in parts]),
        node_ptr=torch.from_numpy(np.concatenate([[0], np.cumsum(node_counts)]).astype(np.int64)),
        edge_ptr=torch.from_numpy(np.concatenate([[0], np.cumsum(edge_counts)]).astype(np.int64)),
    )
    labels = torch.cat([p["y"] for p in parts]) if "y" in parts[0] else None
    return CorpusShards(graphs, labels)
