"""Trainer: the driver of a meta-training run.

It steps the scheduler environment with the configured policy, applies the policy-gradient
update, evaluates periodically, and is the only writer of the run directory: resolved config,
checkpoints, TensorBoard events and results. Everything random is derived from (seed, iteration,
stream), so a run resumed from a checkpoint ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from actors.worker_group import make_worker_group
from envs.task_scheduler import TaskSchedulerEnv
from gsrl.checkpoint import CheckpointStore, RunDirectoryExists, atomic_write_json, git_commit
from gsrl.config import Config, load_config
from gsrl.data.episodes import derive_rng
from gsrl.data.featurize import FEATURIZER_VERSION
from gsrl.meta.evaluation import HONEST, PAPER, EvaluationResult, evaluation_specs, summarize
from gsrl.runtime import apply_threads, load_dataset
from gsrl.scheduling.policies import Feedback, make_policy
from gsrl.telemetry import Telemetry
from learners.scheduler_learner import SchedulerLearner

log = logging.getLogger(__name__)

POLICY_STREAM = 2
FINAL_EVALUATION_INDEX = 1_000_000  # evaluation-seed index of the final (honest) evaluation


class Trainer:
    def __init__(self, config: Config | None, run_dir: Path, resume: bool = False):
        """A new run in run_dir, or (resume) the run there, with its saved config unless one is given."""
        self.run_dir = Path(run_dir)
        config_file = self.run_dir / "config.yaml"
        if resume:
            if not config_file.exists():
                raise FileNotFoundError(f"cannot resume: {config_file} does not exist")
            config = config or load_config(config_file)
        elif (self.run_dir / "checkpoints").exists():
            raise RunDirectoryExists(f"{self.run_dir} already holds a run; use --resume or another name")
        self.config = config
        self.resume = resume
        apply_threads(config)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config_file.write_text(config.to_yaml())
        self.dataset = load_dataset(config)
        self.env = TaskSchedulerEnv(config, make_worker_group(config, self.dataset), self.dataset)
        self.policy = make_policy(config.scheduler, config.encoder.emb_dim, seed=config.run.seed)
        self.policy_learner = SchedulerLearner(self.policy, config.scheduler)
        self.checkpoints = CheckpointStore(self.run_dir / "checkpoints")
        train = self.env.sampler.train_properties
        self.co_selection = np.zeros((len(train), len(train)), dtype=np.int64)
        self.periodic: list[dict[str, Any]] = []
        self.history: list[dict[str, float]] = []
        self.segments: list[dict[str, Any]] = []  # one entry per process that ran part of this run
        self._segment_started = time.perf_counter()  # reset when run() opens this process's segment
        git_commit()  # fix the source commit of this process now, before the checkout can move on

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release the workers (and a learner actor); the run directory stays as written."""
        self.env.close()

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        policy_state = self.policy.state_dict()
        return {"env": self.env.state_dict(), "policy": policy_state,
                "policy_learner": self.policy_learner.state_dict(),
                "co_selection": torch.from_numpy(self.co_selection), "periodic": self.periodic,
                "history": self.history, "segments": self.segments}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.policy_learner.load_state_dict(state["policy_learner"])
        self.co_selection = state["co_selection"].numpy().copy()
        self.periodic = list(state["periodic"])
        self.history = list(state["history"])
        self.segments = list(state["segments"])

    def _checkpoint_info(self) -> dict[str, Any]:
        return {"git_commit": git_commit(), "featurizer_version": FEATURIZER_VERSION,
                "versions": {"torch": torch.__version__, "python": platform.python_version()},
                "config": self.config.to_dict()}

    # -- loop ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg = self.config
        restored = self.checkpoints.load_latest() if self.resume else None
        options = {"state": restored[0]["env"]} if restored else None
        observation, _ = self.env.reset(seed=cfg.run.seed, options=options)
        if restored:
            self.load_state_dict(restored[0])
            log.info("resumed from %s at iteration %d", restored[1]["file"], self.env.iteration)
        self._segment_started = time.perf_counter()
        self.segments.append({"start_iteration": self.env.iteration, "git_commit": git_commit(),
                              "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "backend": cfg.run.backend,
                              "workers": cfg.run.workers})
        telemetry = Telemetry(self.run_dir / "tensorboard", cfg.to_yaml())
        names = self.dataset.property_names
        train_index = {p: i for i, p in enumerate(self.env.sampler.train_properties)}
        if cfg.eval.at_start and self.env.iteration == 0 and not self.periodic:
            self._periodic_evaluation(0, telemetry)
        bar = tqdm(range(self.env.iteration, cfg.run.iterations), initial=self.env.iteration,
                   total=cfg.run.iterations, desc="meta-train", disable=not cfg.run.progress, dynamic_ncols=True)
        for iteration in bar:
            started = time.perf_counter()
            decision = self.policy.act(observation, derive_rng(cfg.run.seed, iteration, POLICY_STREAM), iteration)
            observation, reward, _, _, info = self.env.step(decision.pairs)
            outer = info["outer"]
            scalars = self._policy_update(decision, reward, info, iteration)
            scalars.update({
                "meta/query_loss": outer["query_loss"], "meta/support_loss": outer["support_loss"],
                "meta/contrastive_loss": outer["contrastive_loss"], "meta/grad_norm": outer["grad_norm"],
                "meta/lr": outer["lr"],
                "meta/skipped_updates": float(self.env.learner.skipped_updates),
                **{f"time/{k}": v for k, v in self.env.last_timings.items()},
                **self.env.workers.metrics(),
            })
            selected = [train_index[p] for p in info["properties"]]
            for a in selected:
                for b in selected:
                    self.co_selection[a, b] += 1
            step = iteration + 1
            elapsed = time.perf_counter() - started  # the meta-iteration alone, without evaluation
            scalars["time/iteration_s"] = elapsed
            scalars["throughput/episodes_per_s"] = 2 * len(decision.pairs) / elapsed
            if step % cfg.eval.every == 0 or step == cfg.run.iterations:
                evaluated = time.perf_counter()
                self._periodic_evaluation(step, telemetry)
                scalars["time/eval_s"] = time.perf_counter() - evaluated
            telemetry.scalars(scalars, step)
            self.history.append({"iteration": step, "query_loss": outer["query_loss"], "reward": reward,
                                 "seconds": elapsed})
            if step % cfg.run.picture_every == 0 or step == cfg.run.iterations:
                telemetry.co_selection(self.co_selection, [names[p] for p in self.env.sampler.train_properties], step)
            if step % cfg.run.checkpoint_every == 0 or step == cfg.run.iterations:
                self._close_segment()
                self.checkpoints.save(step, self.state_dict(), self._checkpoint_info())
            bar.set_postfix(query_loss=f"{outer['query_loss']:.3f}", reward=f"{reward:.3f}")
        results = self.finish(telemetry)
        telemetry.close()
        return results

    def _periodic_evaluation(self, step: int, telemetry: Telemetry) -> None:
        """One support draw per test property (the paper protocol's periodic evaluation)."""
        names = self.dataset.property_names
        result = self.evaluate(step, draws=1)
        self.periodic.append(result.to_dict(names))
        telemetry.scalars({"eval/auc_mean": result.mean, "eval/auc_std": result.std,
                           **{f"eval_task/{names[p]}": v for p, v in result.property_means.items()}}, step)
        tqdm.write(f"iteration {step}: test ROC-AUC {100 * result.mean:.2f} (paper protocol draw)")

    def _policy_update(self, decision, reward: float, info: dict, iteration: int) -> dict[str, float]:
        """REINFORCE step (learnable policies) and feedback; a non-finite reward teaches nothing."""
        scalars = {"scheduler/entropy": decision.entropy}
        if hasattr(self.policy, "temperature"):
            scalars["scheduler/temperature"] = self.policy.temperature(iteration)
        if not math.isfinite(reward):
            return scalars
        step = self.policy_learner.update(decision.log_prob, reward)
        self.policy.observe(Feedback(info["pool_properties"], info["pairs"], reward, info["query_losses"]))
        scalars.update({"scheduler/reward": step.reward, "scheduler/baseline": step.baseline,
                        "scheduler/advantage": step.advantage, "scheduler/policy_loss": step.policy_loss})
        return scalars

    def evaluate(self, evaluation_index: int, draws: int) -> EvaluationResult:
        specs = evaluation_specs(self.env.sampler, self.env.sampler.test_properties, self.config.episode.test_auxiliary,
                                 self.config.run.seed, evaluation_index, draws)
        workers = self.env.workers
        predictions = []
        with tqdm(total=len(specs), desc="evaluate", leave=False, disable=not self.config.eval.progress) as bar:
            for start in range(0, len(specs), workers.size):  # one spec per worker at a time
                chunk = specs[start:start + workers.size]
                predictions.extend(workers.evaluate(chunk, self.config.eval.batch_size))
                bar.update(len(chunk))
        return summarize(predictions, self.env.iteration)

    def _close_segment(self) -> None:
        """This process's wall time so far, saved with each checkpoint: an interrupted process counts up
        to its last checkpoint, since the next one redoes what came after."""
        self.segments[-1]["wall_seconds"] = time.perf_counter() - self._segment_started

    def timing(self) -> dict[str, float | None]:
        """Wall time of the whole run (all processes, evaluations included) and meta-training speed
        (meta-iterations alone)."""
        meta_seconds = sum(h["seconds"] for h in self.history)
        return {"wall_seconds": sum(s.get("wall_seconds", 0.0) for s in self.segments),
                "meta_iteration_seconds": meta_seconds,
                "meta_iterations_per_s": len(self.history) / meta_seconds if meta_seconds else None}

    def finish(self, telemetry: Telemetry) -> dict[str, Any]:
        """Final honest evaluation, then results.json with both protocols labelled."""
        cfg = self.config
        names = self.dataset.property_names
        final = self.evaluate(FINAL_EVALUATION_INDEX, draws=cfg.eval.final_draws)
        telemetry.scalars({"eval/final_auc_mean": final.mean}, self.env.iteration)
        self._close_segment()
        best = max(self.periodic, key=lambda r: r["auc_mean"]) if self.periodic else None
        results = {
            "dataset": cfg.data.dataset, "shots": cfg.episode.shots, "seed": cfg.run.seed,
            "iterations": self.env.iteration, "algorithm": cfg.meta.algorithm, "policy": cfg.scheduler.policy,
            "protocols": {
                PAPER: {"description": "one support draw per property at each periodic evaluation; "
                                       "best mean ROC-AUC among them (no validation split)",
                        "auc_mean": None if best is None else best["auc_mean"],
                        "iteration": None if best is None else best["iteration"],
                        "per_property": None if best is None else best["per_property"]},
                HONEST: {"description": f"final model; each property's ROC-AUC averaged over "
                                        f"{cfg.eval.final_draws} support draws",
                         **final.to_dict(names)},
            },
            "curve": self.periodic,
            "skipped_updates": self.env.learner.skipped_updates,
            "timing": self.timing(),
            "backend": {"name": cfg.run.backend, "workers": self.env.workers.describe(),
                        "learner": cfg.ray.learner if cfg.run.backend == "ray" else "driver"},
            "git_commit": git_commit(),
            "segments": self.segments,
            "config": cfg.to_dict(),
        }
        atomic_write_json(self.run_dir / "results.json", results)
        return results
