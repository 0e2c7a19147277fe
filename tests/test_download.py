"""Checksum-verified downloads against a loopback HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gsrl.data.download import ChecksumMismatch, download_datasets, download_file
from gsrl.data.sources import CHEMPROP_BASE_URL, SOURCES, source_for

SIDER = SOURCES["sider"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def mirror(tmp_path: Path, data_root: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder) of a local mirror holding a copy of sider.csv."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copyfile(data_root / SIDER.relative_path, served / SIDER.file_name)
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_sources_table() -> None:
    assert set(SOURCES) == {"tox21", "sider", "toxcast", "muv", "clintox", "bbbp", "hiv", "bace"}
    assert SIDER.url() == f"{CHEMPROP_BASE_URL}/sider.csv"
    assert "3f2b73372a8968f0f73b2fb279a5780cae918d58" in SIDER.url()
    assert source_for("toxcast-APR") is SOURCES["toxcast"]
    with pytest.raises(ValueError, match="pcba"):
        source_for("pcba")


def test_sources_match_shipped_files(data_root: Path) -> None:
    for source in SOURCES.values():
        path = data_root / source.relative_path
        assert path.stat().st_size == source.size
        assert hashlib.sha256(path.read_bytes()).hexdigest() == source.sha256


def test_good_download(mirror: tuple[str, Path], tmp_path: Path) -> None:
    base_url, served = mirror
    dest = tmp_path / "root/moleculenet/sider.csv"
    assert download_file(f"{base_url}/sider.csv", dest, SIDER.sha256, timeout=10) == dest
    assert dest.read_bytes() == (served / "sider.csv").read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["sider.csv"]  # no temp file left


def test_corrupted_download_leaves_nothing(mirror: tuple[str, Path], tmp_path: Path) -> None:
    base_url, served = mirror
    corrupted = bytearray((served / "sider.csv").read_bytes())
    corrupted[100] ^= 0xFF
    (served / "sider.csv").write_bytes(bytes(corrupted))
    dest = tmp_path / "root/moleculenet/sider.csv"
    url = f"{base_url}/sider.csv"
    with pytest.raises(ChecksumMismatch) as info:
        download_file(url, dest, SIDER.sha256, timeout=10)
    message = str(info.value)
    assert url in message and SIDER.sha256 in message
    assert hashlib.sha256(bytes(corrupted)).hexdigest() in message
    assert list(dest.parent.iterdir()) == []


def test_present_file_is_not_downloaded_again(mirror: tuple[str, Path], tmp_path: Path) -> None:
    base_url, served = mirror
    dest = tmp_path / "root/moleculenet/sider.csv"
    dest.parent.mkdir(parents=True)
    shutil.copyfile(served / "sider.csv", dest)
    (served / "sider.csv").unlink()  # a request would now fail with 404
    assert download_file(f"{base_url}/sider.csv", dest, SIDER.sha256, timeout=10) == dest


def test_download_datasets_from_mirror(mirror: tuple[str, Path], tmp_path: Path) -> None:
    base_url, _ = mirror
    root = tmp_path / "root"
    paths = download_datasets(["sider"], root, base_url=base_url + "/")
    assert paths == [root / "moleculenet/sider.csv"]
    assert hashlib.sha256(paths[0].read_bytes()).hexdigest() == SIDER.sha256


def test_http_error_leaves_nothing(mirror: tuple[str, Path], tmp_path: Path) -> None:
    base_url, _ = mirror
    dest = tmp_path / "root/moleculenet/absent.csv"
    with pytest.raises(OSError):  # urllib's HTTPError (404)
        download_file(f"{base_url}/absent.csv", dest, SIDER.sha256, timeout=10)
    assert list(dest.parent.iterdir()) == []
