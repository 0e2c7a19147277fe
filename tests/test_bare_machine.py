"""A bare accelerator machine has torch and torch-geometric but neither RDKit nor Ray: meta-training trains
and evaluates there from the processed cache with the local backend, and benchmarks/gpu_check.py runs
there from the folder its --prepare step wrote."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from gsrl.precision import bf16_unsupported_reason
from gsrl.runtime import load_dataset
from tests.conftest import TINY_OVERRIDES

REPO = Path(__file__).resolve().parent.parent

# Run first in each subprocess: imports of rdkit and ray fail as they would where they are not installed.
WITHOUT_RDKIT_AND_RAY = textwrap.dedent("""
    import sys

    class Missing:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("rdkit", "ray"):
                raise ModuleNotFoundError(f"No module named {name!r}")

    sys.meta_path.insert(0, Missing())
""")

TRAIN = WITHOUT_RDKIT_AND_RAY + textwrap.dedent("""
    from gsrl.config import load_config
    from gsrl.jobs.train import MetaTrainingDriver

    driver = MetaTrainingDriver(load_config(None, sys.argv[1:]))
    driver.reset()
    step = driver.train_step()
    result = driver.evaluate(0, draws=1)
    driver.close()
    assert step.step == 1 and 0.0 < result.mean < 1.0, (step.step, result.mean)
    assert not any(m.split(".")[0] in ("rdkit", "ray") for m in sys.modules)
    print("trained and evaluated without RDKit and Ray")
""")

GPU_CHECK = WITHOUT_RDKIT_AND_RAY + textwrap.dedent("""
    import runpy

    sys.path.insert(0, "benchmarks")
    sys.argv = ["benchmarks/gpu_check.py", *sys.argv[1:]]
    runpy.run_path("benchmarks/gpu_check.py", run_name="__main__")
    assert not any(m.split(".")[0] in ("rdkit", "ray") for m in sys.modules)
""")


def run(script: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *arguments], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def test_meta_training_runs_from_the_processed_cache_without_rdkit_or_ray(tiny_config, data_root, cache_dir):
    load_dataset(tiny_config())  # featurize here (RDKit) so that the cache is warm
    done = run(TRAIN, f"data.root={data_root}", f"data.cache_dir={cache_dir}", *TINY_OVERRIDES)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "without RDKit and Ray" in done.stdout


def test_gpu_check_runs_on_cpu_from_its_prepared_folder_without_rdkit_or_ray(tmp_path):
    prepared = tmp_path / "gpu-check-data"
    subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--prepare", str(prepared), "--tiny"], cwd=REPO,
                   check=True, capture_output=True, timeout=600)
    out = tmp_path / "gpu_check.json"
    done = run(GPU_CHECK, "--data", str(prepared), "--device", "cpu", "--tiny", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(out.read_text())
    meta = record["meta_training_fp32"]
    assert len(meta["iterations"]) == 2 and meta["seconds_per_iteration_median"] > 0
    assert meta["evaluation_seconds"] > 0 and 0.0 < meta["evaluation_auc_mean"] < 1.0
    assert meta["test_properties"] == 6  # SIDER's test properties
    assert record["pretraining_fp32"]["molecules_per_s"] > 0
    assert record["device_name"] == "cpu" and "molecular_vgae" in record["not_measured"]
    if bf16_unsupported_reason(torch.device("cpu")):  # this CPU would emulate bf16: named, with the reason
        assert "no bf16 instructions" in record["not_measured"]["bf16"] and "meta_training_bf16" not in record
    else:
        assert record["meta_training_bf16"]["seconds_per_iteration_median"] > 0
        assert record["pretraining_bf16"]["molecules_per_s"] > 0
