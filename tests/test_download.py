"""Checksum-verified downloads against a loopback HTTP server."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gsrl.data.download import ChecksumMismatch, download_datasets, download_file, fetch_source
from gsrl.data.sources import CHEMPROP_BASE_URL, SOURCES, DataSource, Unpack, dataset_names, sources_for
from tests.conftest import loopback_file_server

SIDER = SOURCES["sider"]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, folder) of an empty loopback mirror."""
    served = tmp_path / "mirror"
    served.mkdir()
    with loopback_file_server(served) as base_url:
        yield base_url, served



@pytest.fixture
def mirror(serve: tuple[str, Path], data_root: Path) -> tuple[str, Path]:
    """(base URL, served folder) of a local mirror holding a copy of sider.csv."""
    base_url, served = serve
    shutil.copyfile(data_root / SIDER.relative_path, served / SIDER.file_name)
    return base_url, served

def test_sources_table() -> None:
    assert dataset_names() == sorted(["tox21", "sider", "toxcast", "muv", "clintox", "bbbp", "hiv", "bace", "cora",
                                      "citeseer", "amazon-photo", "amazon-computers", "zinc", "moses"])
    assert SIDER.url() == f"{CHEMPROP_BASE_URL}/sider.csv"
    assert "3f2b73372a8968f0f73b2fb279a5780cae918d58" in SIDER.url()
    assert sources_for("toxcast-APR") == [SOURCES["toxcast"]]
    assert [s.file_name for s in sources_for("cora")] == [f"ind.cora.{p}" for p in
                                                          ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")]
    assert SOURCES["moses-test"].url("http://mirror/") == "http://mirror/molsets-0.3.1-py3-none-any.whl"
    with pytest.raises(ValueError, match="pcba"):
        sources_for("pcba")
    with pytest.raises(ValueError, match="No download source for 'pubmed'"):
        sources_for("pubmed")


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


def test_planetoid_files_come_as_a_group(serve, data_root: Path, tmp_path: Path) -> None:
    base_url, served = serve
    for source in sources_for("cora"):
        shutil.copyfile(data_root / source.relative_path, served / source.file_name)
    paths = download_datasets(["cora"], tmp_path / "root", base_url=base_url)
    assert len(paths) == 8 and all(p.read_bytes() == (data_root / p.relative_to(tmp_path / "root")).read_bytes()
                                   for p in paths)


def test_gzip_unpack_verifies_the_plain_download_and_is_idempotent(serve, data_root: Path, tmp_path: Path) -> None:
    base_url, served = serve
    source = SOURCES["zinc-test"]
    plain = gzip.decompress((data_root / source.relative_path).read_bytes())
    (served / "test.txt").write_bytes(plain)
    path = fetch_source(source, tmp_path, base_url)
    assert gzip.decompress(path.read_bytes()) == plain
    (served / "test.txt").write_bytes(plain[:-1] + b"X")  # a changed mirror is not asked again ...
    assert fetch_source(source, tmp_path, base_url) == path
    path.unlink()
    with pytest.raises(ChecksumMismatch):  # ... but a fresh fetch of it is refused
        fetch_source(source, tmp_path, base_url)
    assert not path.exists()


def test_zip_member_is_extracted_and_checked(serve, data_root: Path, tmp_path: Path) -> None:
    base_url, served = serve
    member = (data_root / "moses" / "moses_test.csv.gz").read_bytes()
    with zipfile.ZipFile(served / "bundle.whl", "w") as archive:
        archive.writestr("moses/dataset/data/test.csv.gz", member)
    archive_sha = hashlib.sha256((served / "bundle.whl").read_bytes()).hexdigest()
    source = DataSource("toy", "moses/moses_test.csv.gz", SOURCES["moses-test"].sha256, len(member),
                        remote="http://unused/bundle.whl",
                        unpack=Unpack("zip-member", archive_sha, member="moses/dataset/data/test.csv.gz"))
    assert fetch_source(source, tmp_path, base_url).read_bytes() == member
    wrong = DataSource("toy", "moses/other.csv.gz", "0" * 64, 1, remote="http://unused/bundle.whl",
                       unpack=Unpack("zip-member", archive_sha, member="moses/dataset/data/test.csv.gz"))
    with pytest.raises(ChecksumMismatch, match="bundle.whl!moses"):
        fetch_source(wrong, tmp_path, base_url)
    assert not (tmp_path / "moses" / "other.csv.gz").exists()


def test_amazon_download_becomes_the_pickle_free_layout(serve, data_root: Path, tmp_path: Path) -> None:
    base_url, served = serve
    source = SOURCES["amazon-photo"]
    shutil.copyfile(data_root / source.unpack.keep_as, served / "amazon_photo.npz")
    path = fetch_source(source, tmp_path, base_url)
    with np.load(path) as written, np.load(data_root / source.relative_path) as shipped:
        assert sorted(written.files) == sorted(shipped.files)
        assert all(np.array_equal(written[key], shipped[key]) for key in shipped.files)
    assert (tmp_path / source.unpack.keep_as).is_file()
