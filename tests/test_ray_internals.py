"""Private Ray APIs are used in gsrl/ray_internals.py only, and the installed Ray is the range pinned for them."""

from __future__ import annotations

import ast
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
INTERNALS = ROOT / "gsrl" / "ray_internals.py"


def _private_ray_imports(source: Path) -> list[str]:
    """Modules under ray whose dotted path has a private part, and private names imported from ray modules."""
    found = []
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules, names = [node.module], [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            if module.split(".")[0] != "ray":
                continue
            if any(part.startswith("_") for part in module.split(".")):
                found.append(module)
            found.extend(f"{module}.{name}" for name in names if name.startswith("_"))
    return found


def test_only_ray_internals_uses_private_ray_apis() -> None:
    sources = [path for package in ("gsrl", "envs", "actors", "learners", "benchmarks")
               for path in (ROOT / package).rglob("*.py")]
    offenders = {str(path.relative_to(ROOT)): found for path in sources if path != INTERNALS
                 if (found := _private_ray_imports(path))}
    assert offenders == {}
    assert _private_ray_imports(INTERNALS)  # the scan does see private imports where they are


def test_installed_ray_is_in_the_pinned_range_and_has_the_private_names() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ray_requirement = next(Requirement(d) for d in dependencies if Requirement(d).name == "ray")
    assert metadata.version("ray") in ray_requirement.specifier
    assert list(ray_requirement.specifier.filter(["2.9.0", "2.61.0"])) == []  # one minor release, not an open range
    from gsrl import ray_internals

    assert ray_internals.ray_constants.ENABLE_RAY_CLUSTER in (True, False)
    for name in ("_set_torch_distributed_env_vars", "_setup_torch_process_group", "_TorchBackend"):
        assert hasattr(ray_internals, name)
    assert issubclass(ray_internals.LoopbackTorchConfig, ray_internals.TorchConfig)
