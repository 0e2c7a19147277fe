"""run.precision: bf16 refused in one line where the CPU would emulate it; where allowed, the matrix
products run in bf16 and everything the learner reads comes back in float32."""

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch.utils._python_dispatch import TorchDispatchMode

import gsrl.precision as precision
from gsrl.cli import main
from gsrl.errors import ConfigError
from gsrl.jobs.assembly import make_scheduler_env

ROOT = Path(__file__).resolve().parent.parent


class MatmulDtypes(TorchDispatchMode):
    """The dtypes the matrix products of a block produced."""

    def __init__(self):
        super().__init__()
        self.dtypes: set[torch.dtype] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm, torch.ops.aten.bmm):
            self.dtypes.add(out.dtype)
        return out


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 avx512_bf16\n\nflags : other\n")
    assert precision.cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == set()


def test_bf16_is_refused_on_a_cpu_without_bf16_instructions_and_fp32_always_runs():
    cpu = torch.device("cpu")
    with pytest.raises(ConfigError, match=r"key 'run.precision' is 'bf16', but .*no bf16 instructions.*fp32"):
        precision.check_precision("bf16", cpu, flags={"avx2", "fma"})
    precision.check_precision("bf16", cpu, flags={"avx512_bf16"})
    precision.check_precision("bf16", cpu, flags={"amx_bf16"})
    precision.check_precision("fp32", cpu, flags=set())


def test_the_cli_refuses_bf16_on_such_a_cpu_in_one_line_and_writes_nothing(tmp_path, monkeypatch, data_root):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(precision, "cpu_flags", lambda *args: {"avx2"})
    output = tmp_path / "runs"
    result = CliRunner().invoke(main, ["train", "-c", "configs/gsmeta/sider-10shot.yaml", "-o", "run.precision=bf16",
                                       "-o", f"data.root={data_root}", "-o", "run.device=cpu",
                                       "-o", f"run.output_dir={output}"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "run.precision" in lines[0], result.output
    assert not output.exists() or not any(output.iterdir())


def test_the_gae_jobs_say_they_run_fp32_only(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["gae", "-c", "configs/gae/cora-gae.yaml", "-o", "run.precision=bf16"])
    assert result.exit_code == 1 and "fp32 (the link-prediction job runs in fp32)" in result.output


def test_a_bf16_episode_runs_its_matrix_products_in_bf16_and_stays_near_fp32(tiny_config, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda *args: {"avx512_bf16"})
    results = {}
    for name in ("fp32", "bf16"):
        config = tiny_config(f"run.precision={name}")
        env = make_scheduler_env(config)
        env.reset(seed=0)  # the workers hold the learner's initial weights (seeded, the same for both)
        worker, spec = env.workers.workers[0], env.pool.pairs[0][0]
        env.close()
        with MatmulDtypes() as seen:
            episode = worker.runner.train_episode(worker.params, worker.buffers, spec)
        (grad,) = torch.autograd.grad(episode.meta_objective, [worker.params["classifier.3.weight"]])
        assert episode.embedding.dtype == episode.query_loss.dtype == torch.float32
        results[name] = (seen.dtypes, float(episode.query_loss), grad)
    assert results["fp32"][0] == {torch.float32}
    assert torch.bfloat16 in results["bf16"][0]
    assert abs(results["bf16"][1] - results["fp32"][1]) < 0.05
    assert torch.isfinite(results["bf16"][2]).all()
