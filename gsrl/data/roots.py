"""Where the data files are: the data root, and the errors that say how to fix a missing one.

Every loader (few-shot and property datasets, corpora, link-prediction graphs) takes the data root
from here, so the environment variable and the wording of "file missing" live in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "GSRL_DATA_ROOT"

DOWNLOAD_HINT = (
    "Download the benchmark files with `gsrl data download`, or point the data root "
    f"(config key `data.root` or env {DATA_ROOT_ENV}) at a folder that holds them."
)


class DataFileMissing(FileNotFoundError):
    """A data file the loader needs is not on disk; the message says how to get it."""

    def __init__(self, path: str | Path, hint: str = DOWNLOAD_HINT) -> None:
        self.path = Path(path)
        super().__init__(f"Data file not found: {self.path}. {hint}")


class DataRootNotConfigured(ValueError):
    """Neither the configuration nor the environment names a data root."""


def resolve_data_root(configured: str | Path | None) -> Path:
    """The configured data root, else ``$GSRL_DATA_ROOT``; error naming both when neither is set."""
    if configured not in (None, ""):
        return Path(configured).expanduser()
    from_env = os.environ.get(DATA_ROOT_ENV, "")
    if from_env:
        return Path(from_env).expanduser()
    raise DataRootNotConfigured(
        f"No data root configured: set the config key `data.root` or the {DATA_ROOT_ENV} "
        "environment variable to the folder that holds moleculenet/."
    )
