"""The README's tour, run as printed.

Every command of README.md's "Commands" section runs in a copy of the checkout, in a fresh shell whose
only set-up is the documented one (`source .venv/bin/activate`), after the quickstart's own command.
A command that trains gets tiny overrides appended (listed below); every other command runs exactly as
printed. A command the README gains without an entry here fails the test until someone sizes it.

Two things stand in for what this machine lacks: `gsrl data download` fetches from a mirror on
127.0.0.1 (`GSRL_DATA_MIRROR`, documented in docs/data.md), since there is no internet here, and HOME is
a fresh folder (so `~/data` is new and the processed-data cache starts cold).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import loopback_file_server

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"

# Meta-training at test size (the network, the episodes and the schedule; the algorithm is untouched).
EPISODES = ("episode.shots=2", "episode.train_queries=4", "episode.eval_context_queries=4", "scheduler.pool_size=3",
            "scheduler.pairs=2", "relation.edge_hidden_dim=4", "eval.every=2", "eval.final_draws=1",
            "eval.progress=false", "run.iterations=2", "run.checkpoint_every=2", "run.picture_every=2",
            "run.progress=false")
TRAIN = ("encoder.num_layers=2", "encoder.emb_dim=16", *EPISODES)

QUICKSTART = "gsrl train -c configs/quickstart.yaml"  # what `make quickstart` runs
TINY: dict[str, tuple[str, ...]] = {
    QUICKSTART: TRAIN,
    "gsrl train -c configs/gsmeta/sider-10shot.yaml": TRAIN,
    "gsrl train -c configs/quickstart.yaml -o name=quickstart-ucb -o scheduler.policy=ucb": TRAIN,
    "gsrl train -c configs/quickstart.yaml -o name=quickstart-ppo -o scheduler.policy=sb3-ppo":
        (*TRAIN, "scheduler.options={n_steps: 2, batch_size: 2}"),
    "gsrl train -c configs/gsmeta/sider-10shot.yaml -o name=sider-ray -o run.backend=ray -o run.workers=2 "
    "-o run.threads=1": TRAIN,
    "gsrl train -c configs/pre-gsmeta/sider-10shot.yaml": EPISODES,  # the shipped encoder fixes the network
    "gsrl pretrain -c configs/pretrain/attribute_masking.yaml -o run.workers=2":
        ("epochs=1", "batch_size=32", "corpus.shard_size=256", "corpus.max_shards=2", "encoder.num_layers=2",
         "encoder.emb_dim=16"),
    "gsrl finetune -c configs/finetune/hu2020.yaml":
        ("datasets=[bbbp]", "seeds=[0]", "encoders=[{name: gin, path: null}]", "epochs=1", "num_layers=2",
         "emb_dim=16"),
    "gsrl gae -c configs/gae/cora-vgae.yaml": ("epochs=2",),
    "gsrl gae molecules -c configs/gae/molecules-zinc.yaml":
        ("epochs=1", "corpus.shard_size=256", "corpus.max_shards=2", "hidden=16", "latent=8", "samples=16",
         "check_samples=16", "optimisation.starts=4", "optimisation.steps=2", "optimisation.decoded_head_codes=0"),
}
AS_PRINTED = {
    "gsrl train --resume runs/quickstart-sider-10shot",
    "gsrl eval runs/quickstart-sider-10shot --draws 10",
    "gsrl show-config -c configs/gsmeta/tox21-1shot.yaml",
    "gsrl compare -c configs/compare/sider-10shot.yaml",  # reads its committed finished runs back
    "gsrl gae sweep -c configs/gae/sweep.yaml",  # likewise
    "gsrl gae select benchmarks/results/gae-sweep*/results.json --out runs/gae-selection",
    "gsrl data report tox21",
    "gsrl data download tox21 sider --root ~/data",
}


def tour() -> list[str]:
    """The commands of the README's Commands section, in order, without their comments."""
    section = README.read_text().split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command:
                commands.append(command)
    return commands


def with_tiny_overrides(command: str) -> str:
    if command in AS_PRINTED:
        return command
    return command + "".join(f" -o {shlex.quote(o)}" for o in TINY[command])


def test_every_tour_command_is_sized():
    commands = tour()
    assert len(commands) >= 12
    unsized = [c for c in commands if c not in AS_PRINTED and c not in TINY]
    assert not unsized, f"README commands with neither tiny overrides nor a place in AS_PRINTED: {unsized}"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The checkout's files as git sees them (tracked and not ignored), beside the installed .venv."""
    copy = tmp_path_factory.mktemp("checkout")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    (copy / ".venv").symlink_to(Path(sys.prefix))
    return copy


@pytest.fixture(scope="module")
def mirror(data_root: Path, tmp_path_factory):
    """The two CSVs `gsrl data download tox21 sider` asks for, served on 127.0.0.1 under their remote names."""
    served = tmp_path_factory.mktemp("mirror")
    for name in ("tox21.csv", "sider.csv"):
        shutil.copyfile(data_root / "moleculenet" / name, served / name)
    with loopback_file_server(served) as base_url:
        yield base_url + "/"


def test_readme_tour_runs_as_printed(checkout, mirror, data_root, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
                   "RAY_USAGE_STATS_ENABLED": "0", "GSRL_DATA_MIRROR": mirror}
    if os.environ.get("GSRL_DATA_ROOT"):  # a machine whose data lives elsewhere than ../shared/data
        environment["GSRL_DATA_ROOT"] = os.environ["GSRL_DATA_ROOT"]
    for command in [QUICKSTART, *tour()]:
        shell = f"source .venv/bin/activate && {with_tiny_overrides(command)}"
        done = subprocess.run(["bash", "-c", shell], cwd=checkout, env=environment, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        if command == "gsrl train --resume runs/quickstart-sider-10shot":
            assert "had already finished" in done.stdout + done.stderr
        if command.startswith("gsrl eval"):
            assert "honest protocol: ROC-AUC" in done.stdout
    for name in ("tox21.csv", "sider.csv"):
        assert (home / "data" / "moleculenet" / name).read_bytes() == (data_root / "moleculenet" / name).read_bytes()
