"""Where the benchmark CSVs can be downloaded from, with the checksums they must have.

The default host is the public chemprop repository at the last commit whose ``data/``
folder held the individual MoleculeNet files; the sha256 values are those of the
files shipped in the shared data folder, which are byte copies of these URLs.

PCBA is deliberately absent: no public copy with a known checksum is available, so
users place ``moleculenet/pcba.csv.gz`` under their data root themselves.
``moleculenet/fewshot_tasks.json`` is absent too: it is written for this project, not
hosted anywhere; it ships with the project's data folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

CHEMPROP_COMMIT = "3f2b73372a8968f0f73b2fb279a5780cae918d58"
CHEMPROP_BASE_URL = f"https://raw.githubusercontent.com/chemprop/chemprop/{CHEMPROP_COMMIT}/data"


@dataclass(frozen=True)
class DataSource:
    """One downloadable file."""

    name: str  # short name, e.g. "sider"
    relative_path: str  # where it goes under the data root, POSIX style
    sha256: str
    size: int  # bytes, for progress messages only; the checksum is what is verified

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.relative_path).name

    def url(self, base_url: str | None = None) -> str:
        """URL on the default host, or on a mirror with the same flat layout."""
        base = (base_url or CHEMPROP_BASE_URL).rstrip("/")
        return f"{base}/{self.file_name}"


SOURCES: dict[str, DataSource] = {
    source.name: source
    for source in (
        DataSource("tox21", "moleculenet/tox21.csv",
                   "b58cc1f683e78e3c7a1bf7116e9aac0119804018d100f7b8cdb0857941c31aca", 458635),
        DataSource("sider", "moleculenet/sider.csv",
                   "71efc6ac4ca82d6545bc512509863281be0f17234afd7adaf71a71899988302e", 183743),
        DataSource("toxcast", "moleculenet/toxcast.csv.gz",
                   "4b9b4366b02ce7ec7a0831d60f8c46f153c53c5e122376df887476240496abd4", 403733),
        DataSource("muv", "moleculenet/muv.csv.gz",
                   "ee68d1fad0b10440dc494ac3a74cf99168a0b0da9683556b2b48220b88172135", 1329782),
        DataSource("clintox", "moleculenet/clintox.csv",
                   "cc561402d058a0d996a9f5e5d02bc20f6652b7003525b32c3598b8da4b24e9b7", 94829),
        DataSource("bbbp", "moleculenet/bbbp.csv",
                   "a61e17872cbec0743a6147dc802a1f7550acfe8dc1053f881f4c42a3ce2dc597", 111265),
        DataSource("hiv", "moleculenet/hiv.csv.gz",
                   "0a4a7390d6f22035c293e8e0d500655d76233b35f0f68ab128f3ceccdd97a297", 415719),
        DataSource("bace", "moleculenet/bace.csv",
                   "847be1e38d3798c60df03e1aaf2ccd0f09f9ed89407de78e80463aa637088532", 103228),
    )
}


def source_for(name: str) -> DataSource:
    """The file a dataset name needs; every ``toxcast-*`` sub-dataset maps to ``toxcast``."""
    key = "toxcast" if name.startswith("toxcast-") else name
    if key == "pcba":
        raise ValueError(
            "pcba has no download source with a known checksum; place the 128-task "
            "pcba.csv.gz at <data root>/moleculenet/pcba.csv.gz yourself"
        )
    if key not in SOURCES:
        raise ValueError(f"No download source for {name!r}; known: {', '.join(SOURCES)}")
    return SOURCES[key]
