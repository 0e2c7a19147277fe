"""Offline checks of deploy/: the manifests parse, name real CLI options and config keys, and agree
with each other, the image and the README. Nothing here builds an image, starts Ray or uses a network."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gsrl.cli import main
from gsrl.config import load_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GPU_INSTALL = "make install CONSTRAINTS=deploy/constraints-gpu.txt"
# Pinned for the image although pyproject.toml does not name them (none today; torch's CUDA wheels
# are pinned by torch itself).
KNOWN_TRANSITIVE: set[str] = set()


def _load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def _pins() -> dict[str, str]:
    pins = {}
    for line in (DEPLOY / "constraints-gpu.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints-gpu.txt: '{line}' is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def _gpus(container: dict) -> float:
    return float(container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("*.yaml")), ids=lambda p: p.name)
def test_yaml_parses(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert documents and all(isinstance(d, dict) for d in documents)


def test_rayjob_has_head_and_gpu_workers_with_token_auth() -> None:
    job = _load("rayjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    assert cluster["authOptions"]["mode"] == "token"
    assert cluster["rayVersion"] == _pins()["ray"]  # KubeRay's version-dependent behaviour follows it
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    groups = cluster["workerGroupSpecs"]
    assert head and groups
    assert any(_gpus(c) >= 1 for g in groups for c in g["template"]["spec"]["containers"])
    images = {c["image"] for c in head} | {c["image"] for g in groups for c in g["template"]["spec"]["containers"]}
    assert images == {_load("cluster.yaml")["docker"]["image"]}


def test_rayjob_entrypoint_is_a_valid_gsrl_command() -> None:
    job = _load("rayjob.yaml")
    args = shlex.split(job["spec"]["entrypoint"])
    assert args[0] == "gsrl"
    # Parse exactly as the CLI would, without running anything: group options, then the subcommand.
    ctx = main.make_context("gsrl", args[1:])
    at = next(i for i, arg in enumerate(args) if i > 0 and arg in main.commands)
    name, command, rest = main.resolve_command(ctx, args[at:])
    assert name == "train"
    assert any("--address" in p.opts for p in command.params), "gsrl train has no --address option"
    params = command.make_context(name, rest, parent=ctx).params
    assert params["address"] == "auto"

    # The config file (relative to the image's working directory, the repository root) and every
    # override must load: an unknown key or a bad value fails here.
    config = load_config(ROOT / params["config_path"], params["overrides"])
    assert config.run.backend == "ray"

    # The run fits the worker group: GPUs the actors ask for <= GPUs the group has.
    groups = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    available = sum(g["replicas"] * _gpus(c) for g in groups for c in g["template"]["spec"]["containers"])
    wanted = config.run.workers * config.ray.worker_gpus
    if config.ray.learner == "actor":
        wanted += config.ray.learner_gpus
    assert 0 < wanted <= available


def test_cluster_launcher_config() -> None:
    config = _load("cluster.yaml")
    head_type = config["head_node_type"]
    workers = {k: v for k, v in config["available_node_types"].items() if k != head_type}
    assert workers and any(t["resources"].get("GPU", 0) >= 1 for t in workers.values())
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in config[key] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token" in c for c in starts), key
    assert any("GSRL_DATA_ROOT=" in option for option in config["docker"]["run_options"])

    # Ray's own checks: defaults merged the way `ray up` does, then its JSON schema.
    pytest.importorskip("jsonschema")
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(config)))


def test_readme_gives_the_gpu_install_command() -> None:
    assert GPU_INSTALL in (ROOT / "README.md").read_text()


def test_dockerfile() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    # The image installs exactly as the README tells GPU machines to.
    lines = [line.strip() for line in dockerfile.splitlines() if not line.startswith("#")]
    installs = [line for line in lines if "make install" in line]
    assert installs == [f"RUN {GPU_INSTALL}"]

    base = re.search(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE).group(1)
    assert base.startswith("nvidia/cuda:") and re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-\S+", base)
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^CMD \["gsrl", "--help"\]$', dockerfile, re.MULTILINE)


def test_gpu_constraints_pin_declared_dependencies() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(d) for d in project["dependencies"]]
    declared += [Requirement(d) for extra in project.get("optional-dependencies", {}).values() for d in extra]
    by_name = {canonicalize_name(r.name): r for r in declared}

    pins = _pins()
    assert pins["torch"] == "2.13.0"  # the CUDA build: no local version label such as +cpu
    for name, version in pins.items():
        assert name in by_name or name in KNOWN_TRANSITIVE, f"{name} is pinned but not a gsrl dependency"
        if name in by_name:
            assert by_name[name].specifier.contains(version), f"{name}=={version} violates {by_name[name]}"
    missing = {canonicalize_name(r.name) for r in declared if not r.marker} - set(pins) - {"pytest"}
    assert not missing, f"not pinned for the GPU image: {sorted(missing)}"
