"""The scheduler is a well-formed, reproducible Gymnasium environment."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers gsrl/TaskScheduler-v0)


@pytest.fixture
def env(tiny_config):
    environment = gymnasium.make("gsrl/TaskScheduler-v0", config=tiny_config())
    yield environment
    environment.close()


def test_passes_gymnasium_env_checker(env):
    check_env(env.unwrapped, skip_render_check=True)


def test_seeded_resets_reproduce(env):
    first, _ = env.reset(seed=3)
    step_a = env.step(np.array([0, 1]))
    second, _ = env.reset(seed=3)
    step_b = env.step(np.array([0, 1]))
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert step_a[1] == step_b[1]
    np.testing.assert_array_equal(step_a[0]["embeddings"], step_b[0]["embeddings"])
    other, _ = env.reset(seed=4)
    assert not np.array_equal(first["properties"], other["properties"]) or \
        not np.array_equal(first["embeddings"], other["embeddings"])


def test_observation_describes_the_pool(env):
    obs, _ = env.reset(seed=0)
    pool = env.unwrapped.pool
    assert obs["embeddings"].shape == (2 * len(pool.pairs), 16)
    assert obs["mask"].sum() == 2 * len(pool.pairs)
    assert list(obs["properties"]) == list(pool.properties)
    assert set(pool.properties) <= set(env.unwrapped.sampler.train_properties)
    assert obs["progress"][0] == 0.0


def test_step_runs_one_meta_iteration_with_the_chosen_pairs(env):
    env.reset(seed=0)
    learner = env.unwrapped.learner
    before = {k: v.clone() for k, v in learner.model.state_dict().items()}
    _, reward, terminated, truncated, info = env.step(np.array([2, 0]))
    assert info["pairs"] == [2, 0]
    assert reward == pytest.approx(info["outer"]["contrastive_loss"])  # default reward: NT-Xent value
    assert learner.version == 1 and not terminated and not truncated
    changed = [k for k, v in learner.model.state_dict().items() if not v.equal(before[k])]
    assert any(k.startswith("encoder.") for k in changed)


def test_invalid_or_repeated_actions_are_completed_deterministically(env):
    env.reset(seed=0)
    assert env.unwrapped.resolve_action([1, 1]) == [1, 0]
    assert env.unwrapped.resolve_action([7, 2]) == [2, 0]
