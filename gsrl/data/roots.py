"""Where the data files are: the data root, and the errors that say how to fix a missing one.

Every loader (few-shot and property datasets, corpora, link-prediction graphs) takes the data root
from here, so the search order (config, environment, the checkout's ``shared/data``) and the wording of
"file missing" live in one place.
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


def project_data_root() -> Path:
    """``shared/data`` beside the checkout gsrl runs from (the layout its development machines use); the
    path exists only there, so an installed copy never finds anything by it."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def resolve_data_root(configured: str | Path | None) -> Path:
    """The data root, first found of: the config key ``data.root``, ``$GSRL_DATA_ROOT``, and ``shared/data``
    beside the checkout (``project_data_root``); else an error naming all three ways to set it."""
    if configured not in (None, ""):
        return Path(configured).expanduser()
    from_env = os.environ.get(DATA_ROOT_ENV, "")
    if from_env:
        return Path(from_env).expanduser()
    beside_checkout = project_data_root()
    if beside_checkout.is_dir():
        return beside_checkout
    raise DataRootNotConfigured(
        f"No data root: set the config key `data.root` (-o data.root=DIR) or the {DATA_ROOT_ENV} environment "
        f"variable to a folder holding moleculenet/, or fetch the files there with `gsrl data download --root DIR`."
    )
