"""Stable-Baselines3's PPO drives the scheduler: as the `sb3-ppo` policy of a run, and on the environment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsrl.config import ConfigError, SchedulerConfig
from gsrl.scheduling.agents import StableBaselinesPPOPolicy
from gsrl.scheduling.policies import Feedback, make_policy
from tests.test_policies import observation


def drive(policy, iterations: range, reward=lambda pairs: float(pairs[0]), same_pool: bool = False) -> list[list[int]]:
    """Act and observe as the meta-training driver does, on pools of six properties (new candidates each
    iteration, or the same ones)."""
    picked = []
    for iteration in iterations:
        obs = observation(pool=6, seed=0 if same_pool else iteration, properties=[1, 2, 3, 4, 5, 6])
        obs["progress"][0] = iteration / 100
        decision = policy.act(obs, np.random.default_rng(iteration), iteration)
        assert len(set(decision.pairs.tolist())) == len(decision.pairs)
        assert decision.probabilities.sum() == pytest.approx(1.0)
        picked.append(decision.pairs.tolist())
        policy.observe(Feedback([], decision.pairs.tolist(), reward(decision.pairs), {}))
    return picked


def test_the_agent_learns_to_pick_the_rewarded_pair() -> None:
    config = SchedulerConfig(policy="sb3-ppo", pairs=1, options={"n_steps": 20, "batch_size": 20,
                                                                 "learning_rate": 3e-3})
    policy = make_policy(config, 8, seed=0)
    assert isinstance(policy, StableBaselinesPPOPolicy)
    picked = drive(policy, range(300), reward=lambda pairs: float(pairs[0] == 2), same_pool=True)
    first, last = np.mean([p == [2] for p in picked[:50]]), np.mean([p == [2] for p in picked[-50:]])
    assert first < 0.4 and last > 0.6  # one pair in six: 1/6 at first
    assert policy.agent._n_updates == 10 * (300 // 20 - 1)  # SB3's 10 epochs per full rollout


def test_a_restored_agent_continues_exactly(tmp_path) -> None:
    config = SchedulerConfig(policy="sb3-ppo", pairs=3, options={"n_steps": 5, "batch_size": 5})
    whole = drive(make_policy(config, 8, seed=0), range(20))
    first = make_policy(config, 8, seed=0)
    head = drive(first, range(12))
    path = tmp_path / "state.pt"
    state = first.state_dict()
    torch.save(state, path)
    restored = make_policy(config, 8, seed=0)
    restored.load_state_dict(torch.load(path, weights_only=True))
    assert head + drive(restored, range(12, 20)) == whole
    other = make_policy(config, 8, seed=1)
    drive(other, range(1))
    assert not all(torch.equal(value, other.state_dict()["policy"][key]) for key, value in state["policy"].items())


def test_options_that_ppo_does_not_take_are_a_config_error() -> None:
    policy = make_policy(SchedulerConfig(policy="sb3-ppo", options={"n_stepz": 5}), 8)
    with pytest.raises(ConfigError, match="n_stepz"):
        drive(policy, range(1))


def test_a_run_with_the_agent_as_its_policy_writes_its_selections(tiny_config, tmp_path) -> None:
    from gsrl.jobs.train import Trainer

    config = tiny_config("scheduler.policy=sb3-ppo", "scheduler.options={n_steps: 2, batch_size: 2}")
    with Trainer(config, tmp_path / "run") as trainer:
        results = trainer.run()
    assert results["policy"] == "sb3-ppo" and results["iterations"] == 4
    assert sum(results["selection"]["selected"]) == 4 * 2  # B = 2 pairs per meta-batch
    assert trainer.driver.policy.agent._n_updates > 0


def test_the_example_trains_ppo_on_the_registered_environment(tiny_config) -> None:
    from examples.sb3_ppo_scheduler import train_agent

    config = tiny_config()
    overrides = [f"{key}={value}" for key, value in (("data.root", config.data.root),
                                                     ("data.cache_dir", config.data.cache_dir))]
    from tests.conftest import TINY_OVERRIDES
    log = train_agent(None, overrides + list(TINY_OVERRIDES), steps=4, rollout=2)
    assert len(log.rewards) == 4 and all(np.isfinite(log.rewards))
    assert all(len(set(pairs)) == 2 for pairs in log.pairs)
