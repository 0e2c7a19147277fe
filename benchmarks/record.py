"""What every benchmark records: the machine, versions, commit, and the trainer's meta-iteration loop, timed."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import resource
import sys
from pathlib import Path

import torch

from gsrl.checkpoint import git_commit
from gsrl.jobs.train import MetaTrainingDriver
from gsrl.precision import CPU_BF16_FLAGS, cpu_flags

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_gb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def machine() -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_bf16_instructions": sorted(cpu_flags() & set(CPU_BF16_FLAGS))}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def provenance() -> dict:
    """Command, commit, machine and versions, the header of every result file (Ray's: None where it is not
    installed, as on a bare accelerator machine)."""
    try:
        ray_version = importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        ray_version = None
    return {"command": " ".join([Path(sys.executable).name, *sys.argv]), "git_commit": git_commit(),
            "machine": machine(),
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "ray": ray_version}}


def timed_iterations(driver: MetaTrainingDriver, warmup: int, iterations: int) -> list[dict[str, float]]:
    """Run warmup + iterations meta-iterations of the trainer's own loop (`MetaTrainingDriver.train_step`:
    policy, environment step, policy update); per measured iteration its `time/` breakdown (pool, adaptation,
    learning, sync, total) and the workers' `workers/` load."""
    driver.reset()
    rows = []
    for iteration in range(warmup + iterations):
        scalars = driver.train_step().scalars
        row = {**{k.removeprefix("time/"): v for k, v in scalars.items() if k.startswith("time/")},
               **{k: v for k, v in scalars.items() if k.startswith("workers/")}}
        if iteration >= warmup:
            rows.append(row)
        print(f"iteration {iteration}: {row['iteration_s']:.2f}s", file=sys.stderr, flush=True)
    return rows


def write(record: dict, stem: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{stem}.json"
    out.write_text(json.dumps(record, indent=2))
    return out
