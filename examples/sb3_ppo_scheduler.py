"""Stable-Baselines3's PPO learning on the scheduler environment itself: `PPO.learn` steps
`gsrl/TaskScheduler-v0`, and every environment step is one meta-iteration of GS-Meta.

    pip install -e '.[agents]'
    python examples/sb3_ppo_scheduler.py -c configs/quickstart.yaml --steps 100

This is the plain Gymnasium loop: the agent owns it, so there is no evaluation, checkpoint or result
file. For an ordinary run driven by the same agent (periodic evaluation, exact resume, a column in a
policy study) name it as the policy instead: `gsrl train -c configs/quickstart.yaml -o
scheduler.policy=sb3-ppo` (docs/extending.md).
"""

from __future__ import annotations

import argparse

import gymnasium
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

import envs  # noqa: F401  (registers gsrl/TaskScheduler-v0)
from gsrl.config import load_config


class RewardLog(BaseCallback):
    """Keeps each meta-iteration's reward and the pairs that ran."""

    def __init__(self) -> None:
        super().__init__()
        self.rewards: list[float] = []
        self.pairs: list[list[int]] = []

    def _on_step(self) -> bool:
        self.rewards.append(float(self.locals["rewards"][0]))
        self.pairs.append(list(self.locals["infos"][0]["pairs"]))
        return True


def train_agent(config_path: str | None, overrides: list[str], steps: int, rollout: int) -> RewardLog:
    """PPO with its multi-input policy, on the environment `gymnasium.make` builds from the config."""
    config = load_config(config_path, overrides)
    env = gymnasium.make("gsrl/TaskScheduler-v0", config=config)
    agent = PPO("MultiInputPolicy", env, n_steps=rollout, batch_size=rollout, seed=config.run.seed, verbose=0)
    log = RewardLog()
    try:
        agent.learn(total_timesteps=steps, callback=log)
    finally:
        env.close()
    return log


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", help="meta-training YAML config (default: the built-in defaults)")
    parser.add_argument("-o", "--override", action="append", default=[], help="key=value, repeatable")
    parser.add_argument("--steps", type=int, default=100, help="meta-iterations (environment steps)")
    parser.add_argument("--rollout", type=int, default=25, help="PPO's n_steps: transitions per update")
    arguments = parser.parse_args(argv)
    log = train_agent(arguments.config, arguments.override, arguments.steps, arguments.rollout)
    for step, (reward, pairs) in enumerate(zip(log.rewards, log.pairs), 1):
        print(f"meta-iteration {step}: pairs {pairs} reward {reward:.4f}")


if __name__ == "__main__":
    main()
