"""Checksum-verified downloads of the benchmark files (standard library only).

A file is streamed into a temporary file next to its destination and renamed into
place only after its sha256 matched, so an interrupted or corrupted download never
leaves a file that the loaders would trust.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gsrl.checkpoint import atomic_write, atomic_write_bytes, sha256_of
from gsrl.data.sources import SOURCES, DataSource, sources_for

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20


class ChecksumMismatch(OSError):
    """A downloaded file's sha256 differs from the expected one."""

    def __init__(self, url: str, expected: str, actual: str) -> None:
        self.url, self.expected, self.actual = url, expected, actual
        super().__init__(f"Checksum mismatch for {url}: expected sha256 {expected}, got {actual}")


def _stream_to(url: str, handle: BinaryIO, timeout: float) -> str:
    """Copy the response body of ``url`` into ``handle``; return its sha256."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def download_file(url: str, dest: Path, sha256: str, *, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right checksum is already there."""
    dest = Path(dest)
    if dest.is_file() and sha256_of(dest) == sha256:
        logger.info("%s already present with the expected checksum", dest)
        return dest

    def verified(handle: BinaryIO) -> None:
        actual = _stream_to(url, handle, timeout)
        if actual != sha256:
            raise ChecksumMismatch(url, sha256, actual)

    atomic_write(dest, verified)  # a file with the wrong checksum never takes the name
    logger.info("Downloaded %s -> %s", url, dest)
    return dest


def _sources_for(names: Iterable[str] | None) -> list[DataSource]:
    """Distinct sources for dataset names (all sources when ``names`` is None)."""
    if names is None:
        return list(SOURCES.values())
    chosen: dict[str, DataSource] = {}
    for name in names:
        for source in sources_for(name):
            chosen.setdefault(source.name, source)
    return list(chosen.values())


def _write_pickle_free_amazon(download: Path, dest: Path) -> None:
    """The GraphData Amazon archive (pickled scipy matrices) as the gnn-benchmark key layout PyG's
    ``Amazon`` reads, without pickles. Called only on a download whose checksum verified."""
    with np.load(download, allow_pickle=True) as archive:
        adjacency, attributes = archive["adj_matrix"].item(), archive["node_attr"].item()
        arrays = {"labels": archive["node_label"].astype(np.int64),
                  "class_names": np.array(archive["metadata"].item()["class_names"])}
    for prefix, matrix in (("adj", adjacency), ("attr", attributes)):
        matrix = matrix.sorted_indices()  # canonical CSR: column indices ascending within each row
        arrays |= {f"{prefix}_data": matrix.data.astype(np.float32),
                   f"{prefix}_indices": matrix.indices.astype(np.int32),
                   f"{prefix}_indptr": matrix.indptr.astype(np.int32),
                   f"{prefix}_shape": np.array(matrix.shape, dtype=np.int64)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(dest, buffer.getvalue())


def fetch_source(source: DataSource, data_root: Path, base_url: str | None = None, timeout: float = 60) -> Path:
    """Put ``source``'s file under ``data_root`` unless a verified copy is already there; return its path."""
    dest = Path(data_root) / source.relative_path
    url, unpack = source.url(base_url), source.unpack
    if unpack is None:
        return download_file(url, dest, source.sha256, timeout=timeout)
    if unpack.kind == "gzip":
        if dest.is_file() and hashlib.sha256(gzip.decompress(dest.read_bytes())).hexdigest() == unpack.download_sha256:
            return dest
        with tempfile.TemporaryDirectory(dir=_parent(dest)) as scratch:
            plain = download_file(url, Path(scratch) / dest.stem, unpack.download_sha256, timeout=timeout)
            atomic_write_bytes(dest, gzip.compress(plain.read_bytes(), compresslevel=9, mtime=0))
        return dest
    if unpack.kind == "zip-member":
        if dest.is_file() and sha256_of(dest) == source.sha256:
            return dest
        with tempfile.TemporaryDirectory(dir=_parent(dest)) as scratch:
            archive = download_file(url, Path(scratch) / "archive.zip", unpack.download_sha256, timeout=timeout)
            with zipfile.ZipFile(archive) as opened:
                payload = opened.read(unpack.member)
        actual = hashlib.sha256(payload).hexdigest()
        if actual != source.sha256:
            raise ChecksumMismatch(f"{url}!{unpack.member}", source.sha256, actual)
        atomic_write_bytes(dest, payload)
        return dest
    if unpack.kind == "amazon-npz":
        kept = download_file(url, Path(data_root) / unpack.keep_as, unpack.download_sha256, timeout=timeout)
        if not dest.is_file():
            _write_pickle_free_amazon(kept, dest)
        return dest
    raise ValueError(f"{source.name}: unknown unpack kind {unpack.kind!r}")


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent


def download_datasets(
    names: Iterable[str] | None, data_root: str | Path, base_url: str | None = None
) -> list[Path]:
    """Fetch the files of the named datasets into ``data_root``; return their paths.

    ``names`` are dataset names (``sider``, ``toxcast-APR``, ``cora``, ``amazon-photo``, ``zinc``,
    ``moses``, ...); None means every known source. ``base_url`` replaces the default hosts with a
    mirror serving each file under its remote file name.
    """
    return [fetch_source(source, Path(data_root), base_url) for source in _sources_for(names)]
