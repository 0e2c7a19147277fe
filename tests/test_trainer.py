"""End-to-end runs of the driver on a tiny config: outputs, TensorBoard, resume, faults."""

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from actors.episode_worker import EpisodeWorker
from envs.task_scheduler import TaskSchedulerEnv
from gsrl.checkpoint import CheckpointStore
from gsrl.jobs.train import Trainer


def final_model(run_dir):
    state, entry = CheckpointStore(run_dir / "checkpoints").load_latest()
    return state["env"]["learner"]["model"], entry


def test_run_writes_results_and_tensorboard(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    trainer = Trainer(tiny_config(), run_dir)
    results = trainer.run()
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["protocols"]["paper"]["auc_mean"] == max(c["auc_mean"] for c in saved["curve"])
    assert [c["iteration"] for c in saved["curve"]] == [2, 4]
    honest = saved["protocols"]["honest"]
    assert len(honest["per_property"]) == 6 and all(len(v) == 2 for v in honest["per_property"].values())
    assert 0.0 < honest["auc_mean"] < 1.0 and results["seed"] == 0 and results["algorithm"] == "gsmeta"
    timing = saved["timing"]
    assert timing["meta_iteration_seconds"] == pytest.approx(sum(h["seconds"] for h in trainer.history))
    assert 0 < timing["meta_iteration_seconds"] < timing["wall_seconds"]  # evaluations are outside the former
    assert (run_dir / "config.yaml").exists()

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ["meta/query_loss", "meta/contrastive_loss", "meta/grad_norm", "scheduler/reward",
                "scheduler/baseline", "scheduler/entropy", "scheduler/temperature", "eval/auc_mean",
                "time/iteration_s", "time/pool_s", "time/eval_s", "throughput/episodes_per_s"]:
        assert tag in tags["scalars"], tag
    assert "scheduler/co_selection" in tags["images"]
    losses = events.Scalars("meta/query_loss")
    assert [e.step for e in losses] == [1, 2, 3, 4]
    assert [e.value for e in losses] == pytest.approx([h["query_loss"] for h in trainer.history], rel=1e-6)
    aucs = {e.step: e.value for e in events.Scalars("eval/auc_mean")}
    assert aucs == pytest.approx({c["iteration"]: c["auc_mean"] for c in saved["curve"]})
    assert any("config" in t for t in tags["tensors"])

    selection = saved["selection"]  # tiny config: pool of 3, B = 2 pairs, 4 meta-iterations
    assert selection["meta_batches"] == 4 and sum(selection["selected"]) == 4 * 2
    assert [row[i] for i, row in enumerate(selection["co_selection"])] == selection["selected"]
    assert sum(map(sum, selection["co_selection"])) == 4 * 2 * 2
    assert len(selection["entropy_by_tenth"]) == 4 and all(
        0 < e <= m + 1e-9 for e, m in zip(selection["entropy_by_tenth"], selection["entropy_max_by_tenth"]))
    names = selection["properties"]
    for step in (2, 4):  # picture_every = 2: the share of the last two meta-batches that selected each property
        recent = trainer.history[step - 2:step]
        shares = {name: events.Scalars(f"selection/{name}")[step // 2 - 1] for name in names}
        for index, name in enumerate(names):
            property_id = trainer.driver.train_properties[index]
            assert shares[name].step == step
            assert shares[name].value == pytest.approx(sum(property_id in h["properties"] for h in recent) / 2)


def test_resume_after_interruption_matches_uninterrupted_run(tiny_config, tmp_path, monkeypatch):
    config = tiny_config("run.iterations=5", "eval.every=5")
    reference = Trainer(config, tmp_path / "reference").run()

    calls = {"n": 0}
    original_step = TaskSchedulerEnv.step

    def crash_on_fourth_step(self, action):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("simulated kill")
        return original_step(self, action)

    monkeypatch.setattr(TaskSchedulerEnv, "step", crash_on_fourth_step)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, tmp_path / "interrupted").run()
    monkeypatch.setattr(TaskSchedulerEnv, "step", original_step)
    assert CheckpointStore(tmp_path / "interrupted" / "checkpoints").load_latest()[1]["iteration"] == 2

    resumed = Trainer(None, tmp_path / "interrupted", resume=True).run()
    expected, _ = final_model(tmp_path / "reference")
    actual, _ = final_model(tmp_path / "interrupted")
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    assert resumed["protocols"] == reference["protocols"]
    assert resumed["curve"] == reference["curve"]


def test_corrupt_checkpoint_falls_back_to_previous(tiny_config, tmp_path, caplog):
    run_dir = tmp_path / "run"
    Trainer(tiny_config(), run_dir).run()
    newest = run_dir / "checkpoints" / "iter_000004.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated write
    with caplog.at_level("WARNING"):
        _, entry = CheckpointStore(run_dir / "checkpoints").load_latest()
    assert entry["iteration"] == 2
    assert "iter_000004.pt is corrupt" in caplog.text


def test_non_finite_gradients_skip_the_update(tiny_config, tmp_path, monkeypatch):
    original = EpisodeWorker.backward
    calls = {"n": 0}

    def poisoned(self, grad_embeddings, query_weight):
        grads = original(self, grad_embeddings, query_weight)
        calls["n"] += 1
        if calls["n"] == 2:
            first = next(iter(grads[0]))
            grads[0][first] = grads[0][first] * float("nan")
        return grads

    monkeypatch.setattr(EpisodeWorker, "backward", poisoned)
    trainer = Trainer(tiny_config("run.iterations=3", "eval.every=3"), tmp_path / "run")
    trainer.run()
    learner = trainer.driver.learner
    assert learner.skipped_updates == 1 and learner.version == 2
    assert all(torch.isfinite(p).all() for p in learner.model.parameters())
