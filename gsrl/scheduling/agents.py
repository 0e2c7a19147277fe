"""An off-the-shelf RL agent as a scheduler policy: Stable-Baselines3's PPO, learning online (`sb3-ppo`).

The agent sees the scheduler environment's own observation (`gsrl/TaskScheduler-v0`: candidate
embeddings, mask, property ids, progress) through SB3's `MultiInputPolicy`, proposes a
MultiDiscrete([P] * B) action, and learns from the environment's reward. Meta-training keeps its
driver: each meta-iteration the agent acts and the transition goes into SB3's rollout buffer; every
`n_steps` transitions SB3's own `PPO.train` runs its clipped-objective epochs. So the agent runs inside
an ordinary run (evaluation, checkpoints, exact resume) and can be a column of a policy study.

Needs the `[agents]` extra (``pip install -e '.[agents]'``). `scheduler.options` are keyword
arguments of `stable_baselines3.PPO`; SB3's defaults hold except the rollout length (SB3's 2048 steps
is longer than most meta-training runs): one PPO update per 25 meta-iterations.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

try:
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.utils import obs_as_tensor
except ImportError as error:  # the optional extra is missing: make_policy turns this into a one-line ConfigError
    raise ImportError(f"the sb3-ppo policy needs Stable-Baselines3: pip install -e '.[agents]' ({error})") from None

from gsrl.errors import ConfigError
from gsrl.scheduling.config import SchedulerConfig
from gsrl.scheduling.interface import Decision, Feedback, legal_pairs, selection_entropy, valid_pairs

# Sized for runs of a few hundred meta-iterations: 10 updates in a 250-iteration run.
PPO_DEFAULTS = {"n_steps": 25, "batch_size": 25}
BUFFER_FIELDS = ("actions", "rewards", "episode_starts", "values", "log_probs")


class _SpacesOnly(gym.Env):
    """The environment's spaces, which SB3 needs to build the agent; meta-training steps the real environment."""

    def __init__(self, observation_space: spaces.Dict, action_space: spaces.MultiDiscrete):
        self.observation_space = observation_space
        self.action_space = action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        raise RuntimeError("the meta-training driver steps the scheduler environment, not SB3")

    def step(self, action):
        raise RuntimeError("the meta-training driver steps the scheduler environment, not SB3")


def agent_spaces(observation: dict[str, np.ndarray], pairs: int) -> tuple[spaces.Dict, spaces.MultiDiscrete]:
    """The scheduler environment's spaces for a pool of this observation's shape."""
    pool = len(observation["properties"])
    return spaces.Dict({
        "embeddings": spaces.Box(-np.inf, np.inf, shape=observation["embeddings"].shape, dtype=np.float32),
        "mask": spaces.MultiBinary(2 * pool),
        "properties": spaces.Box(-1, np.inf, shape=(pool,), dtype=np.int64),
        "progress": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
    }), spaces.MultiDiscrete([pool] * min(pairs, pool))


class StableBaselinesPPOPolicy:
    """SB3 PPO driving the scheduler online; built on the first observation, when the pool's size is known."""

    learnable = False  # PPO trains itself; the REINFORCE learner leaves it alone

    def __init__(self, config: SchedulerConfig, embedding_dim: int):
        self.config = config
        self.ppo_arguments = {**PPO_DEFAULTS, **config.options}
        self.agent_seed = int(torch.randint(2 ** 62, ()))  # make_policy seeds this draw from run.seed
        self.agent: PPO | None = None
        self.pending: dict[str, Any] | None = None  # the last act's transition, waiting for its reward
        self.pending_state: dict[str, Any] | None = None  # state loaded before the agent was built

    def _build(self, observation: dict[str, np.ndarray]) -> PPO:
        observation_space, action_space = agent_spaces(observation, self.config.pairs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.agent_seed)
            try:
                agent = PPO("MultiInputPolicy", _SpacesOnly(observation_space, action_space), device="cpu",
                            verbose=0, **self.ppo_arguments)
            except (TypeError, ValueError, AssertionError) as error:
                raise ConfigError(f"scheduler.options {self.config.options}: not arguments of "
                                  f"stable_baselines3.PPO ({error})") from None
        agent.set_logger(Logger(folder=None, output_formats=[]))
        agent.rollout_buffer.reset()
        return agent

    def act(self, observation: dict, rng: np.random.Generator, iteration: int) -> Decision:
        if self.agent is None:
            self.agent = self._build(observation)
            if self.pending_state is not None:
                self._load_agent(self.pending_state)
        seed = int(rng.integers(2 ** 62))
        self._store_pending(observation, iteration, seed)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            obs_tensor = obs_as_tensor({k: v[None] for k, v in observation.items()}, self.agent.device)
            actions, values, log_probs = self.agent.policy(obs_tensor)
            distribution = self.agent.policy.get_distribution(obs_tensor).distribution
        action = actions.cpu().numpy()[0]
        valid = valid_pairs(observation)
        pairs = legal_pairs(action, valid, min(self.config.pairs, len(valid)))
        # Per-pair weight: each of the B categorical heads' probabilities, averaged over the heads.
        weights = torch.stack([head.probs[0] for head in distribution]).mean(dim=0).numpy()
        self.pending = {"observation": {k: v.copy() for k, v in observation.items()}, "action": action,
                        "value": values, "log_prob": log_probs, "episode_start": iteration == 0, "reward": None}
        return Decision(pairs, None, weights.astype(float), selection_entropy(weights))

    def observe(self, feedback: Feedback) -> None:
        if self.pending is not None and math.isfinite(feedback.reward):
            self.pending["reward"] = feedback.reward

    def _store_pending(self, next_observation: dict, iteration: int, seed: int) -> None:
        """The last transition joins the rollout buffer (one without a finite reward is dropped); a full buffer
        is bootstrapped from the current observation and trained on with PPO's own update."""
        pending, self.pending = self.pending, None
        if pending is None or pending["reward"] is None:
            return
        agent, buffer = self.agent, self.agent.rollout_buffer
        buffer.add({k: v[None] for k, v in pending["observation"].items()}, pending["action"][None],
                   np.array([pending["reward"]]), np.array([pending["episode_start"]]), pending["value"],
                   pending["log_prob"])
        agent.num_timesteps += 1
        if not buffer.full:
            return
        numpy_state = np.random.get_state()  # SB3 shuffles minibatches with numpy's global generator
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed % 2 ** 32)
            with torch.no_grad():
                last_value = agent.policy.predict_values(
                    obs_as_tensor({k: v[None] for k, v in next_observation.items()}, agent.device))
            buffer.compute_returns_and_advantage(last_values=last_value, dones=np.array([False]))
            agent._current_progress_remaining = 1.0 - float(next_observation["progress"][0])
            agent.train()
        np.random.set_state(numpy_state)
        buffer.reset()

    def state_dict(self) -> dict[str, Any]:
        """The agent's weights, optimiser, partly filled rollout buffer and pending transition, as tensors."""
        if self.agent is None:
            return {"built": False}
        buffer = self.agent.rollout_buffer
        pending = None
        if self.pending is not None:
            observation = self.pending["observation"]
            pending = {"observation": {k: torch.from_numpy(np.asarray(v)) for k, v in observation.items()},
                       "action": torch.from_numpy(self.pending["action"]), "value": self.pending["value"],
                       "log_prob": self.pending["log_prob"], "episode_start": self.pending["episode_start"],
                       "reward": self.pending["reward"]}
        return {"built": True, "policy": self.agent.policy.state_dict(),
                "optimizer": self.agent.policy.optimizer.state_dict(),
                "num_timesteps": self.agent.num_timesteps, "n_updates": self.agent._n_updates,
                "buffer_pos": buffer.pos,
                "buffer": {name: torch.from_numpy(getattr(buffer, name).copy()) for name in BUFFER_FIELDS},
                "buffer_observations": {k: torch.from_numpy(v.copy()) for k, v in buffer.observations.items()},
                "pending": pending}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`; the agent itself is rebuilt on the next observation, then loaded."""
        self.pending_state = state if state.get("built") else None
        if self.agent is not None and self.pending_state is not None:
            self._load_agent(self.pending_state)

    def _load_agent(self, state: dict[str, Any]) -> None:
        agent, buffer = self.agent, self.agent.rollout_buffer
        agent.policy.load_state_dict(state["policy"])
        agent.policy.optimizer.load_state_dict(state["optimizer"])
        agent.num_timesteps, agent._n_updates = state["num_timesteps"], state["n_updates"]
        buffer.reset()
        buffer.pos = state["buffer_pos"]
        for name in BUFFER_FIELDS:
            getattr(buffer, name)[...] = state["buffer"][name].numpy()
        for key, value in state["buffer_observations"].items():
            buffer.observations[key][...] = value.numpy()
        pending = state["pending"]
        self.pending = None if pending is None else {
            "observation": {k: v.numpy() for k, v in pending["observation"].items()},
            "action": pending["action"].numpy(), "value": pending["value"], "log_prob": pending["log_prob"],
            "episode_start": pending["episode_start"], "reward": pending["reward"]}
        self.pending_state = None
