"""The one run-directory layout and its start/resume rule, on a bare folder."""

from __future__ import annotations

import pytest

from gsrl.checkpoint import RunDirectoryExists
from gsrl.rundir import RunDirectory


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
