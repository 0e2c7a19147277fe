"""Where the data files can be downloaded from, with the checksums they must have.

MoleculeNet CSVs come from the public chemprop repository at the last commit whose ``data/`` folder
held the individual files; the Planetoid graphs (Cora, CiteSeer) from kimiyoung/planetoid; the
Amazon co-purchase graphs from EdisonLeeeee/GraphData (pickled; gsrl writes the pickle-free copy its
loaders read, and keeps the verified download beside it); the ZINC subset from JT-VAE's repository
(gzip'd on arrival); MOSES from the ``molsets`` 0.3.1 wheel on PyPI (its two data files are
extracted). Every download is verified against the sha256 of the published bytes before anything is
written where a loader would find it.

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
PLANETOID_BASE_URL = ("https://raw.githubusercontent.com/kimiyoung/planetoid/"
                      "af6abf468a772cc055bec88c52e4d6f51b7c37e3/data")
GRAPHDATA_BASE_URL = ("https://raw.githubusercontent.com/EdisonLeeeee/GraphData/"
                      "f8022c26b917346f2a461ffec0ec5ae24b36de68/datasets")
JTNN_BASE_URL = "https://raw.githubusercontent.com/wengong-jin/icml18-jtnn/d4c425a8a28fce7d0e8f5da741d27d3fce4a7ec0/data"
MOLSETS_WHEEL_URL = ("https://files.pythonhosted.org/packages/ca/04/335f23e9ae95ca381ac7c3f335303dbbeb0f8a604d167891cf60c"
                     "9360178/molsets-0.3.1-py3-none-any.whl")
MOLSETS_WHEEL_SHA256 = "7f4450e3ebecebe79c3a2a55950c93daddee071120daf64a163d03481e811d34"


@dataclass(frozen=True)
class Unpack:
    """What turns a verified download into the file a loader reads."""

    kind: str  # "gzip": compress it; "zip-member": extract `member`; "amazon-npz": write the pickle-free copy
    download_sha256: str  # checksum of the downloaded bytes
    member: str | None = None  # zip-member: path inside the archive
    keep_as: str | None = None  # where the verified download stays under the data root (None: not kept)


@dataclass(frozen=True)
class DataSource:
    """One file under the data root and where it comes from."""

    name: str  # short name, e.g. "sider"
    relative_path: str  # where it goes under the data root, POSIX style
    sha256: str  # of the file as shipped in the data folder (for "gzip" and "amazon-npz": informative only)
    size: int  # bytes, for progress messages only; the checksum is what is verified
    remote: str | None = None  # default URL; None: the chemprop file of the same name
    unpack: Unpack | None = None
    group: str | None = None  # the dataset name that fetches this file (a dataset may need several)

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.relative_path).name

    def url(self, base_url: str | None = None) -> str:
        """URL on the default host, or on a mirror serving every file under its remote file name."""
        default = self.remote or f"{CHEMPROP_BASE_URL}/{self.file_name}"
        if base_url is None:
            return default
        return f"{base_url.rstrip('/')}/{PurePosixPath(default).name}"


_PLANETOID_SHA256 = {
    "cora": {"x": ("23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab", 22119),
             "tx": ("b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a", 148025),
             "allx": ("9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543", 257305),
             "y": ("94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1", 4054),
             "ty": ("41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad", 28135),
             "ally": ("2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71", 47959),
             "graph": ("58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d", 59847),
             "test.index": ("297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875", 5000)},
    "citeseer": {"x": ("d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6", 31087),
                 "tx": ("539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21", 260321),
                 "allx": ("2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668", 595021),
                 "y": ("8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924", 3014),
                 "ty": ("55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce", 24135),
                 "ally": ("f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95", 55623),
                 "graph": ("d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7", 61987),
                 "test.index": ("2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4", 5000)},
}


def _planetoid_sources() -> list[DataSource]:
    return [DataSource(f"{name}-{part}", f"graphs/planetoid/ind.{name}.{part}", sha256, size,
                       remote=f"{PLANETOID_BASE_URL}/ind.{name}.{part}", group=name)
            for name, parts in _PLANETOID_SHA256.items() for part, (sha256, size) in parts.items()]


def _amazon_source(name: str, remote_file: str, derived_sha256: str, size: int, download_sha256: str) -> DataSource:
    derived = f"graphs/amazon/amazon_electronics_{name.removeprefix('amazon-')}.npz"
    kept = f"graphs/amazon/source_graphdata/{remote_file}"
    return DataSource(name, derived, derived_sha256, size, remote=f"{GRAPHDATA_BASE_URL}/{remote_file}",
                      unpack=Unpack("amazon-npz", download_sha256, keep_as=kept))


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
        *_planetoid_sources(),
        _amazon_source("amazon-photo", "amazon_photo.npz",
                       "80f5247a7ef4e97e71a0e3d2d6bafb20c2ff9feef3812d26a02a797bffe55aa1", 1767210,
                       "bdb98b54cd3125bfa69b23ba0aae84fabcb770c6727175b8f6eb1d64f3be4b2b"),
        _amazon_source("amazon-computers", "amazon_cs.npz",
                       "ad36cedd2abc01ee628cc4c1d66fdafe3347772ffe00558595b620d4e0f5e08a", 3414107,
                       "a6942db609f196b53503d91b99a02ad8d052d5d9be8ef41db976fb65f66ed1f3"),
        DataSource("zinc-valid", "zinc/zinc250k_jtvae_valid.txt.gz",
                   "f38fd990587108d5d295487855df889897fcbd1f653f4a67a87c4e21bc7ce175", 280901,
                   remote=f"{JTNN_BASE_URL}/zinc/valid.txt", group="zinc",
                   unpack=Unpack("gzip", "ad7d9c2bfebd93ffda6c32ed0e89d1714ae1f592f6340c0e6ae057521bbae30d")),
        DataSource("zinc-test", "zinc/zinc250k_jtvae_test.txt.gz",
                   "12df97094b8fa4e99e561dd6fe4462e000aaab5ba61d5294ed7795e43f81ed93", 58305,
                   remote=f"{JTNN_BASE_URL}/zinc/test.txt", group="zinc",
                   unpack=Unpack("gzip", "31f6ce92914814db33bf0dbfc45f3836193e27cb80a59c54d88bc05a1f5fab83")),
        DataSource("moses-train", "moses/moses_train.csv.gz",
                   "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c", 10238967,
                   remote=MOLSETS_WHEEL_URL, group="moses",
                   unpack=Unpack("zip-member", MOLSETS_WHEEL_SHA256, member="moses/dataset/data/train.csv.gz")),
        DataSource("moses-test", "moses/moses_test.csv.gz",
                   "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2", 1367572,
                   remote=MOLSETS_WHEEL_URL, group="moses",
                   unpack=Unpack("zip-member", MOLSETS_WHEEL_SHA256, member="moses/dataset/data/test.csv.gz")),
    )
}


def dataset_names() -> list[str]:
    """Every name ``sources_for`` accepts: single files and the groups of several."""
    return sorted({source.group or source.name for source in SOURCES.values()})


def sources_for(name: str) -> list[DataSource]:
    """The files a dataset name needs; every ``toxcast-*`` sub-dataset maps to ``toxcast``, ``cora`` to its
    eight Planetoid files, ``zinc`` and ``moses`` to their two files each."""
    key = "toxcast" if name.startswith("toxcast-") else name
    if key == "pcba":
        raise ValueError(
            "pcba has no download source with a known checksum; place the 128-task "
            "pcba.csv.gz at <data root>/moleculenet/pcba.csv.gz yourself"
        )
    chosen = [s for s in SOURCES.values() if key in (s.name, s.group)]
    if not chosen:
        raise ValueError(f"No download source for {name!r}; known: {', '.join(dataset_names())}")
    return chosen
