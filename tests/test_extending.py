"""docs/extending.md: the scheduler-policy plug-in it documents (examples/round_robin_policy.py) is built
by make_policy from the documented overrides, acts legally and meta-trains; non-policies are rejected."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from examples.round_robin_policy import RoundRobinPolicy
from gsrl.checkpoint import CheckpointStore
from gsrl.config import ConfigError, SchedulerConfig, load_config
from gsrl.jobs.train import Trainer
from gsrl.scheduling.policies import POLICIES, Feedback, SchedulerPolicy, StatelessPolicy, make_policy, valid_pairs

PLUGIN = "examples.round_robin_policy:RoundRobinPolicy"
# The overrides docs/extending.md shows (the command line passes them with -o).
DOCUMENTED = (f"scheduler.policy={PLUGIN}", "scheduler.options={random_ties: false}")


class NoAct(StatelessPolicy):
    """Everything a policy has except act."""

    def __init__(self, config: SchedulerConfig, embedding_dim: int):
        pass


def pool(properties: list[int], padding: int = 1, dim: int = 16) -> dict:
    """An env-style observation: one pair per property, then `padding` padded pairs (mask 0, property -1)."""
    size = len(properties) + padding
    embeddings = np.zeros((2 * size, dim), dtype=np.float32)
    embeddings[: 2 * len(properties)] = np.random.default_rng(0).standard_normal((2 * len(properties), dim))
    mask = np.zeros(2 * size, dtype=np.int8)
    mask[: 2 * len(properties)] = 1
    return {"embeddings": embeddings, "mask": mask,
            "properties": np.array(properties + [-1] * padding, dtype=np.int64),
            "progress": np.array([0.0], dtype=np.float32)}


def test_documented_plugin_is_a_scheduler_policy_and_acts_legally() -> None:
    config = load_config(None, (*DOCUMENTED, "scheduler.pairs=2"))
    policy = make_policy(config.scheduler, 16, seed=0)
    assert type(policy) is RoundRobinPolicy and isinstance(policy, SchedulerPolicy)
    rng = np.random.default_rng(0)

    observation = pool([7, 3, 5])
    decision = policy.act(observation, rng, 0)
    assert decision.pairs.dtype == np.int64 and len(decision.pairs) == 2
    assert len(set(decision.pairs.tolist())) == 2 and set(decision.pairs.tolist()) <= set(valid_pairs(observation))
    assert decision.log_prob is None and decision.probabilities.shape == (4,)
    assert decision.pairs.tolist() == [1, 2]  # nothing trained yet: ties broken by property id (3, 5)

    policy.observe(Feedback([7, 3, 5], decision.pairs.tolist(), 0.5, {3: 0.7, 5: 0.6}))
    # Property 7 was never trained, then 3 and 5 (equally stale) by id: round robin.
    assert policy.act(pool([5, 3, 7]), rng, 1).pairs.tolist() == [2, 1]

    restored = make_policy(config.scheduler, 16)
    restored.load_state_dict(policy.state_dict())
    assert restored.state_dict() == policy.state_dict() == {"last_trained": {3: 0, 5: 0}, "iterations": 1}


def test_every_registered_policy_is_a_scheduler_policy() -> None:
    for name in POLICIES:
        assert isinstance(make_policy(SchedulerConfig(policy=name), 8), SchedulerPolicy), name


def test_a_class_without_act_is_rejected_in_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        make_policy(SchedulerConfig(policy="tests.test_extending:NoAct"), 8)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("scheduler.policy 'tests.test_extending:NoAct': ")
    assert "NoAct is not a SchedulerPolicy; it lacks act " in message


def test_meta_training_runs_with_the_plugin(tiny_config, tmp_path) -> None:
    run_dir = tmp_path / "run"
    config = tiny_config(*DOCUMENTED, "run.iterations=3", "eval.every=3", "eval.final_draws=1")
    with Trainer(config, run_dir) as trainer:
        assert type(trainer.driver.policy) is RoundRobinPolicy
        results = trainer.run()
    saved = json.loads((run_dir / "results.json").read_text())
    assert results["iterations"] == saved["iterations"] == 3
    assert saved["policy"] == PLUGIN and saved["config"]["scheduler"]["options"] == {"random_ties": False}

    state, entry = CheckpointStore(run_dir / "checkpoints").load_latest()
    assert entry["iteration"] == 3
    policy_state = state["policy"]  # saved with every checkpoint, read back with weights_only=True
    assert policy_state["iterations"] == 3
    assert set(policy_state["last_trained"]) <= set(trainer.driver.train_properties)
    assert len(policy_state["last_trained"]) >= config.scheduler.pairs

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert [e.value for e in events.Scalars("scheduler/entropy")] == [0.0, 0.0, 0.0]  # the plug-in's Decision
    assert [e.value for e in events.Scalars("scheduler/policy_loss")] == [0.0, 0.0, 0.0]  # nothing to train
    assert "scheduler/temperature" not in scalars and "scheduler/reward" in scalars


def test_the_documented_plugin_is_the_example_module() -> None:
    """docs/extending.md shows examples/round_robin_policy.py's class verbatim."""
    root = Path(__file__).resolve().parent.parent
    module = (root / "examples" / "round_robin_policy.py").read_text()
    shown = re.findall(r"^```python\n(class RoundRobinPolicy:.*?)^```", (root / "docs" / "extending.md").read_text(),
                       re.MULTILINE | re.DOTALL)
    assert len(shown) == 1 and shown[0] in module
