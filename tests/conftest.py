"""Shared pytest fixtures."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# Addresses a socket may listen on and still be reachable from this machine alone.
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@contextlib.contextmanager
def loopback_file_server(folder: Path) -> Iterator[str]:
    """Serve `folder` over HTTP on 127.0.0.1 (an ephemeral port); yields the base URL, without a final slash."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `slow` tests unless a marker expression was given (e.g. `-m slow`)."""
    if config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow test; run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Real data folder: $GSRL_DATA_ROOT, else <repo>/../shared/data."""
    configured = os.environ.get("GSRL_DATA_ROOT")
    if configured:
        return Path(configured)
    return (Path(__file__).resolve().parent.parent.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Processed-dataset cache shared by all tests of one run."""
    return tmp_path_factory.mktemp("gsrl-cache")


TINY_OVERRIDES = (
    "data.dataset=sider",
    "encoder.num_layers=2", "encoder.emb_dim=16",
    "relation.edge_hidden_dim=4",
    "episode.shots=2", "episode.train_queries=4", "episode.eval_context_queries=4",
    "scheduler.pool_size=3", "scheduler.pairs=2",
    "eval.every=2", "eval.final_draws=2", "eval.batch_size=256", "eval.progress=false",
    "run.iterations=4", "run.checkpoint_every=2", "run.picture_every=2", "run.progress=false", "run.device=cpu",
)


@pytest.fixture(scope="session")
def tiny_config(data_root: Path, cache_dir: Path):
    """A GS-Meta config small enough for unit tests (real SIDER data, tiny model)."""
    from gsrl.config import load_config

    def make(*overrides: str):
        return load_config(None, (f"data.root={data_root}", f"data.cache_dir={cache_dir}") + TINY_OVERRIDES
                           + overrides)

    return make
