"""The one run-directory layout and its start/resume rule, on a bare folder."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from gsrl.checkpoint import RunDirectoryExists
from gsrl.data.roots import resolve_data_root
from gsrl.jobs.train import Trainer
from gsrl.rundir import RunDirectory, RunDirectoryBusy


def test_a_new_run_takes_an_empty_folder_and_refuses_one_that_holds_a_run(tmp_path):
    run = RunDirectory(tmp_path / "run")
    assert not run.holds_a_run() and run.read_results() is None
    run.start("name: run\n", resume=False)
    assert run.config_file.read_text() == "name: run\n" and run.holds_a_run()
    with pytest.raises(RunDirectoryExists, match=r"already holds a run; use --resume .*run or another name"):
        run.start("name: other\n", resume=False)
    assert run.config_file.read_text() == "name: run\n"  # the refused start wrote nothing


def test_a_checkpoint_folder_alone_marks_a_run(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    with pytest.raises(RunDirectoryExists):
        run.check(resume=False)


def test_resume_needs_the_saved_config_and_finished_results_read_back(tmp_path):
    run = RunDirectory(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="cannot resume: .*config.yaml does not exist"):
        run.start("name: run\n", resume=True)
    assert not run.path.exists()
    run.start("name: run\n", resume=False)
    run.start("name: run\nepochs: 3\n", resume=True)
    assert run.config_file.read_text().endswith("epochs: 3\n")
    assert run.write_results({"auc": 0.75}) == run.path / "results.json"
    assert run.read_results() == {"auc": 0.75}
    assert {p.name for p in (run.config_file, run.checkpoints, run.tensorboard)} == {"config.yaml", "checkpoints",
                                                                                      "tensorboard"}


def test_a_second_process_on_a_locked_run_directory_is_refused_in_one_line(tmp_path):
    """The lock is the operating system's: held by another process it refuses; when that process ends, it is
    free again, however the process ended."""
    run = RunDirectory(tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from gsrl.rundir import RunDirectory; "
         "lock = RunDirectory(Path(sys.argv[1])).start('name: run\\n', resume=False); print('held', flush=True); "
         "sys.stdin.read()", str(run.path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirectoryBusy, match=rf"is in use by pid {holder.pid} on ") as busy:
            run.start("name: run\n", resume=True)
        assert "\n" not in str(busy.value)
    finally:
        holder.kill()
        holder.wait()
    run.start("name: run\n", resume=True).release()  # the killed holder's lock went with it


def test_a_trainer_holds_its_run_directory_until_it_ends(tiny_config, tmp_path):
    config = tiny_config("run.iterations=1", "eval.every=1", "eval.final_draws=1")
    first = Trainer(config, tmp_path / "run")
    with pytest.raises(RunDirectoryBusy):
        Trainer(None, tmp_path / "run", resume=True)
    first.run()
    first.close()
    with Trainer(None, tmp_path / "run", resume=True) as again:  # free once the first has ended
        assert again.driver.iteration == 0  # not yet reset: the finished run is not re-run by opening it
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["root"] == str(resolve_data_root(config.data.root))  # the root the run read, recorded
