"""TaskSchedulerEnv: GS-Meta's subgraph scheduling as a Gymnasium environment.

One environment step is one meta-iteration. The observation is the candidate pool (each
candidate subgraph's embedding g under the current model, a validity mask, the pool's property
ids, and training progress); the action names B distinct pairs to meta-train on; the reward is
configurable (default: GS-Meta's NT-Xent value of the chosen batch). An environment episode is
a whole meta-training run of `run.iterations` steps.

Actions are MultiDiscrete([P] * B): pair indices are used in order; a repeated or invalid index
is replaced by the lowest unused valid pair, so any sampled action is legal and a policy that
proposes B distinct valid pairs gets exactly those (`info["pairs"]` says what ran).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gsrl.scheduling.interface import legal_pairs
from gsrl.scheduling.rewards import make_reward
from gsrl.config import Config
from gsrl.data.datasets import FewShotDataset
from gsrl.data.episodes import CandidatePool, EpisodeSampler, RngStream, derive_rng
from gsrl.meta.roles import EpisodeWorkers, OuterLearner
from gsrl.runtime import build_model, resolve_device


class TaskSchedulerEnv(gym.Env):
    """Given the dataset, the episode workers and the learner; `gymnasium.make` builds in-process defaults
    for them (`gsrl.jobs.assembly.make_scheduler_env`), and the meta-training driver passes its own."""

    metadata = {"render_modes": []}

    def __init__(self, config: Config, dataset: FewShotDataset, workers: EpisodeWorkers, learner: OuterLearner):
        self.config = config
        self.dataset = dataset
        self.workers = workers
        self.learner = learner
        episode = self.config.episode
        self.sampler = EpisodeSampler.for_dataset(self.dataset, episode.shots, episode.train_queries,
                                                  episode.eval_context_queries)
        eligible = self.sampler.eligible_properties(self.sampler.train_properties)
        self.pool_size = min(self.config.scheduler.pool_size, len(eligible))
        self.pairs = min(self.config.scheduler.pairs, self.pool_size)
        dim = self.config.encoder.emb_dim
        self.observation_space = spaces.Dict({
            "embeddings": spaces.Box(-np.inf, np.inf, shape=(2 * self.pool_size, dim), dtype=np.float32),
            "mask": spaces.MultiBinary(2 * self.pool_size),
            "properties": spaces.Box(-1, self.dataset.num_properties - 1, shape=(self.pool_size,), dtype=np.int64),
            "progress": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
        })
        self.action_space = spaces.MultiDiscrete([self.pool_size] * self.pairs)
        self.reward_fn = make_reward(self.config.scheduler.reward)
        self.iteration = 0
        self.seed_value = self.config.run.seed
        self.pool: CandidatePool | None = None
        self._started = False
        self._pool_seconds = 0.0
        self._sync_seconds = 0.0
        self.last_timings: dict[str, float] = {}  # seconds spent in the last step (kept out of info: not reproducible)

    # -- Gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """A fresh meta-training run (model initialised from the seed), or one restored from options["state"]."""
        super().reset(seed=seed)
        options = options or {}
        if seed is not None:
            self.seed_value = int(seed)
        model = build_model(self.dataset, self.config, seed=self.seed_value)
        self.learner.restart(model.to(resolve_device(self.config)))
        self.iteration = 0
        self._started = True
        if "state" in options:
            self.load_state_dict(options["state"])
        return self._observe(), {"iteration": self.iteration}

    def step(self, action):
        assert self._started and self.pool is not None, "call reset() first"
        pairs = self.resolve_action(action)
        specs = [self.pool.pairs[i][0] for i in pairs] + [self.pool.pairs[i][1] for i in pairs]
        started = time.perf_counter()
        summaries = self.workers.forward(specs)
        adapted = time.perf_counter()
        contrastive, grad_embeddings = self.learner.contrastive_gradient(summaries)
        grads = self.workers.backward(grad_embeddings, 1.0 / len(specs))
        outer = self.learner.apply(grads, summaries, contrastive)
        learned = time.perf_counter()
        reward = float(self.reward_fn(outer, summaries))
        half = len(pairs)
        query_losses = {self.pool.properties[p]: 0.5 * (summaries[i].query_loss + summaries[i + half].query_loss)
                        for i, p in enumerate(pairs)}
        info = {
            "iteration": self.iteration,
            "pairs": pairs,
            "properties": [self.pool.properties[p] for p in pairs],
            "pool_properties": list(self.pool.properties),
            "query_losses": query_losses,
            "outer": dataclasses.asdict(outer),
        }
        self.last_timings = {"pool_s": self._pool_seconds, "adapt_s": adapted - started,
                             "learn_s": learned - adapted}
        self.iteration += 1
        terminated = self.iteration >= self.config.run.iterations
        observation = self._observe()
        self.last_timings["sync_s"] = self._sync_seconds
        return observation, reward, terminated, False, info

    # -- helpers -------------------------------------------------------------------------------
    def resolve_action(self, action) -> list[int]:
        """Requested pair indices in order; duplicates/invalid ones replaced by the lowest unused valid pair."""
        return legal_pairs(action, np.arange(len(self.pool.pairs)), self.pairs).tolist()

    def _observe(self) -> dict[str, np.ndarray]:
        """Broadcast the current weights, draw this iteration's pool, embed it with the workers."""
        started = time.perf_counter()
        self.workers.broadcast(self.learner.weights())
        synced = time.perf_counter()
        rng = derive_rng(self.seed_value, self.iteration, RngStream.CANDIDATE_POOL)
        self.pool = self.sampler.candidate_pool(self.pool_size, self.config.episode.train_auxiliary, rng)
        embeddings = self.workers.embed([spec.without_auxiliary() for spec in self.pool.flat_specs()])
        self._sync_seconds = synced - started
        self._pool_seconds = time.perf_counter() - synced
        n = len(self.pool.pairs)
        obs_embeddings = np.zeros(self.observation_space["embeddings"].shape, dtype=np.float32)
        obs_embeddings[: 2 * n] = embeddings.numpy()
        mask = np.zeros(2 * self.pool_size, dtype=np.int8)
        mask[: 2 * n] = 1
        properties = np.full(self.pool_size, -1, dtype=np.int64)
        properties[:n] = self.pool.properties
        progress = np.array([min(self.iteration / max(self.config.run.iterations, 1), 1.0)], dtype=np.float32)
        return {"embeddings": obs_embeddings, "mask": mask, "properties": properties, "progress": progress}

    def state_dict(self) -> dict:
        return {"learner": self.learner.state_dict(), "iteration": self.iteration, "seed": self.seed_value}

    def load_state_dict(self, state: dict) -> None:
        self.learner.load_state_dict(state["learner"])
        self.iteration = state["iteration"]
        self.seed_value = state["seed"]

    def close(self) -> None:
        """Release the learner (an actor, when it has one) and the workers."""
        self.learner.close()
        self.workers.close()
