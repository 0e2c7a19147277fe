"""Checksum-verified downloads of the benchmark files (standard library only).

A file is streamed into a temporary file next to its destination and renamed into
place only after its sha256 matched, so an interrupted or corrupted download never
leaves a file that the loaders would trust.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from gsrl.data.sources import SOURCES, DataSource, source_for

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20


class ChecksumMismatch(OSError):
    """A downloaded file's sha256 differs from the expected one."""

    def __init__(self, url: str, expected: str, actual: str) -> None:
        self.url, self.expected, self.actual = url, expected, actual
        super().__init__(f"Checksum mismatch for {url}: expected sha256 {expected}, got {actual}")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    if dest.is_file() and file_sha256(dest) == sha256:
        logger.info("%s already present with the expected checksum", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            actual = _stream_to(url, handle, timeout)
        if actual != sha256:
            raise ChecksumMismatch(url, sha256, actual)
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    logger.info("Downloaded %s -> %s", url, dest)
    return dest


def _sources_for(names: Iterable[str] | None) -> list[DataSource]:
    """Distinct sources for dataset names (all sources when ``names`` is None)."""
    if names is None:
        return list(SOURCES.values())
    chosen: dict[str, DataSource] = {}
    for name in names:
        source = source_for(name)
        chosen.setdefault(source.name, source)
    return list(chosen.values())


def download_datasets(
    names: Iterable[str] | None, data_root: str | Path, base_url: str | None = None
) -> list[Path]:
    """Fetch the files of the named datasets into ``data_root``; return their paths.

    ``names`` may be source names (``sider``, ``toxcast``) or few-shot dataset names
    (``toxcast-APR``); None means every known source. ``base_url`` replaces the default
    host with a mirror serving the files as ``<base_url>/<file name>``.
    """
    root = Path(data_root)
    return [
        download_file(source.url(base_url), root / source.relative_path, source.sha256)
        for source in _sources_for(names)
    ]
