"""Meta-training: the driver of one meta-iteration, and the Trainer that runs it and owns the run directory.

`MetaTrainingDriver` owns the worker group, the learner, the scheduler environment and the policy;
its `train_step` is one meta-iteration (act on the observed pool -> environment step -> policy
learning -> scalars), the loop the benchmarks time as well. `Trainer` repeats it, evaluates
periodically, and is the only writer of the run directory: resolved config, checkpoints, TensorBoard
events and results. Everything random is derived from (seed, iteration, stream), so a run resumed from
a checkpoint ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from envs.task_scheduler import TaskSchedulerEnv
from gsrl.checkpoint import CheckpointStore, git_commit
from gsrl.config import Config, load_config
from gsrl.data.datasets import FewShotDataset
from gsrl.data.episodes import RngStream, derive_rng
from gsrl.data.features import FEATURIZER_VERSION
from gsrl.data.roots import resolve_data_root
from gsrl.jobs.assembly import make_meta_learner, make_worker_group
from gsrl.jobs.dashboard import meta_training_dashboard
from gsrl.meta.evaluation import HONEST, PAPER, EvaluationResult, evaluation_specs, summarize
from gsrl.rundir import RunDirectory
from gsrl.runtime import apply_threads, build_model, load_dataset, resolve_device
from gsrl.scheduling.policies import Decision, Feedback, make_policy, valid_pairs
from gsrl.telemetry import Telemetry
from learners.scheduler_learner import SchedulerLearner

log = logging.getLogger(__name__)

FINAL_EVALUATION_INDEX = 1_000_000  # evaluation-seed index of the final (honest) evaluation


@dataclass
class StepResult:
    """One meta-iteration as the driver saw it."""

    step: int  # meta-iterations done, this one included
    reward: float
    info: dict[str, Any]  # the environment's step info (pairs, properties, query losses, outer step)
    scalars: dict[str, float]  # `section/metric` values for TensorBoard
    seconds: float  # the meta-iteration alone, without evaluation


class MetaTrainingDriver:
    """Owns the roles of meta-training and runs one meta-iteration at a time; writes nothing."""

    def __init__(self, config: Config, dataset: FewShotDataset | None = None):
        self.config = config
        self.dataset = dataset if dataset is not None else load_dataset(config)
        self.workers = make_worker_group(config, self.dataset)
        initial = build_model(self.dataset, config, seed=config.run.seed).to(resolve_device(config))
        self.learner = make_meta_learner(initial, config)
        self.env = TaskSchedulerEnv(config, self.dataset, self.workers, self.learner)
        self.policy = make_policy(config.scheduler, config.encoder.emb_dim, seed=config.run.seed)
        self.policy_learner = SchedulerLearner(self.policy, config.scheduler)
        self.observation: dict[str, np.ndarray] | None = None

    @property
    def iteration(self) -> int:
        return self.env.iteration

    @property
    def train_properties(self) -> list[int]:
        return self.env.sampler.train_properties

    def reset(self, state: dict[str, Any] | None = None) -> None:
        """Start the run from the config's seed, or continue the run saved in `state` (see get_state)."""
        options = {"state": state["env"]} if state else None
        self.observation, _ = self.env.reset(seed=self.config.run.seed, options=options)
        if state:
            self.policy.load_state_dict(state["policy"])
            self.policy_learner.load_state_dict(state["policy_learner"])

    def train_step(self) -> StepResult:
        """One meta-iteration: the policy acts on the observed candidate pool; the environment runs the chosen
        episodes on the workers and the learner's outer update, then draws and embeds the next pool; the
        policy learns from the reward; the iteration's scalars are gathered."""
        iteration = self.env.iteration
        started = time.perf_counter()
        candidates = len(valid_pairs(self.observation))
        decision = self.policy.act(self.observation, derive_rng(self.config.run.seed, iteration, RngStream.POLICY),
                                   iteration)
        self.observation, reward, _, _, info = self.env.step(decision.pairs)
        scalars = self._learn_policy(decision, reward, info, iteration)
        if math.isfinite(decision.entropy):
            scalars["scheduler/entropy_max"] = math.log(candidates)
        scalars.update(self._step_scalars(info["outer"]))
        seconds = time.perf_counter() - started
        scalars["time/iteration_s"] = seconds
        scalars["throughput/episodes_per_s"] = 2 * len(decision.pairs) / seconds
        return StepResult(iteration + 1, reward, info, scalars, seconds)

    def _learn_policy(self, decision: Decision, reward: float, info: dict, iteration: int) -> dict[str, float]:
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

    def _step_scalars(self, outer: dict[str, Any]) -> dict[str, float]:
        return {"meta/query_loss": outer["query_loss"], "meta/support_loss": outer["support_loss"],
                "meta/contrastive_loss": outer["contrastive_loss"], "meta/grad_norm": outer["grad_norm"],
                "meta/lr": outer["lr"], "meta/skipped_updates": float(self.learner.skipped_updates),
                **{f"time/{k}": v for k, v in self.env.last_timings.items()}, **self.workers.metrics()}

    def evaluate(self, evaluation_index: int, draws: int) -> EvaluationResult:
        """Test-property predictions of the current weights, one spec per worker at a time."""
        specs = evaluation_specs(self.env.sampler, self.env.sampler.test_properties,
                                 self.config.episode.test_auxiliary, self.config.run.seed, evaluation_index, draws)
        predictions = []
        with tqdm(total=len(specs), desc="evaluate", leave=False, disable=not self.config.eval.progress) as bar:
            for start in range(0, len(specs), self.workers.size):
                chunk = specs[start:start + self.workers.size]
                predictions.extend(self.workers.evaluate(chunk, self.config.eval.batch_size))
                bar.update(len(chunk))
        return summarize(predictions, self.env.iteration)

    def get_state(self) -> dict[str, Any]:
        return {"env": self.env.state_dict(), "policy": self.policy.state_dict(),
                "policy_learner": self.policy_learner.state_dict()}

    def close(self) -> None:
        """Release the workers and the learner (actors, on Ray)."""
        self.env.close()


class Trainer:
    def __init__(self, config: Config | None, run_dir: Path, resume: bool = False):
        """A new run in run_dir, or (resume) the run there, with its saved config unless one is given. The run
        directory is written only once the run's roles are built, and is locked until `run` ends or `close`."""
        self.run_dir = Path(run_dir)
        self.layout = RunDirectory(self.run_dir)
        self.layout.check(resume)
        if config is None:
            config = load_config(self.layout.config_file)
        # The saved config records the data root the run read.
        config = dataclasses.replace(config, data=dataclasses.replace(
            config.data, root=str(resolve_data_root(config.data.root))))
        self.config = config
        self.resume = resume
        apply_threads(config)
        self.driver = MetaTrainingDriver(config)
        try:
            self.lock = self.layout.start(config.to_yaml(), resume)
        except BaseException:
            self.driver.close()
            raise
        self.dataset = self.driver.dataset
        self.checkpoints = CheckpointStore(self.layout.checkpoints)
        self.finished_before = False  # set by run() when the run it was asked to resume had already ended
        train = self.driver.train_properties
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
        """Release the workers (and a learner actor) and the run directory's lock; the directory stays as written."""
        self.lock.release()
        self.driver.close()

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**self.driver.get_state(), "co_selection": torch.from_numpy(self.co_selection),
                "periodic": self.periodic, "history": self.history, "segments": self.segments}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The Trainer's own records; the driver restores the rest in `reset`."""
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
        """Meta-train to run.iterations (from the last checkpoint when resuming), then evaluate and write
        results.json; the run directory's lock is released however the run ends."""
        try:
            return self._run()
        finally:
            self.lock.release()

    def _run(self) -> dict[str, Any]:
        cfg = self.config
        finished = self.layout.read_results() if self.resume else None
        if finished is not None and finished["iterations"] >= cfg.run.iterations:
            self.finished_before = True  # nothing to add: no second final evaluation, no new event file
            return finished
        restored = self.checkpoints.load_latest() if self.resume else None
        self.driver.reset(restored[0] if restored else None)
        if restored:
            self.load_state_dict(restored[0])
            log.info("resumed from %s at iteration %d", restored[1]["file"], self.driver.iteration)
        self._segment_started = time.perf_counter()
        self.segments.append({"start_iteration": self.driver.iteration, "git_commit": git_commit(),
                              "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "backend": cfg.run.backend,
                              "workers": cfg.run.workers})
        telemetry = Telemetry(self.layout.tensorboard, cfg.to_dict(), meta_training_dashboard(cfg))
        names = self.dataset.property_names
        train_index = {p: i for i, p in enumerate(self.driver.train_properties)}
        if cfg.eval.at_start and self.driver.iteration == 0 and not self.periodic:
            self._periodic_evaluation(0, telemetry)
        bar = tqdm(range(self.driver.iteration, cfg.run.iterations), initial=self.driver.iteration,
                   total=cfg.run.iterations, desc="meta-train", disable=not cfg.run.progress, dynamic_ncols=True)
        for _ in bar:
            result = self.driver.train_step()
            step, scalars = result.step, result.scalars
            selected = [train_index[p] for p in result.info["properties"]]
            for a in selected:
                for b in selected:
                    self.co_selection[a, b] += 1
            if step % cfg.eval.every == 0 or step == cfg.run.iterations:
                evaluated = time.perf_counter()
                self._periodic_evaluation(step, telemetry)
                scalars["time/eval_s"] = time.perf_counter() - evaluated
            telemetry.scalars(scalars, step)
            query_loss = result.info["outer"]["query_loss"]
            self.history.append({"iteration": step, "query_loss": query_loss, "reward": result.reward,
                                 "seconds": result.seconds, "properties": list(result.info["properties"]),
                                 "entropy": scalars.get("scheduler/entropy", math.nan),
                                 "entropy_max": scalars.get("scheduler/entropy_max", math.nan)})
            if step % cfg.run.picture_every == 0 or step == cfg.run.iterations:
                telemetry.co_selection(self.co_selection, [names[p] for p in self.driver.train_properties], step)
                telemetry.scalars(self._selection_shares(cfg.run.picture_every), step)
            if step % cfg.run.checkpoint_every == 0 or step == cfg.run.iterations:
                self._close_segment()
                self.checkpoints.save(step, self.state_dict(), self._checkpoint_info())
            bar.set_postfix(query_loss=f"{query_loss:.3f}", reward=f"{result.reward:.3f}")
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
        telemetry.results({"auc_paper": max(r["auc_mean"] for r in self.periodic)}, step)
        tqdm.write(f"iteration {step}: test ROC-AUC {100 * result.mean:.2f} (paper protocol draw)")

    def evaluate(self, evaluation_index: int, draws: int) -> EvaluationResult:
        return self.driver.evaluate(evaluation_index, draws)

    def _selection_shares(self, window: int) -> dict[str, float]:
        """`selection/<property>`: the share of the last `window` meta-batches that selected each training
        property, so TensorBoard shows how the policy's preferences move over the run."""
        recent = self.history[-window:]
        names = self.dataset.property_names
        return {f"selection/{names[p]}": sum(p in h.get("properties", ()) for h in recent) / len(recent)
                for p in self.driver.train_properties}

    def selection_record(self) -> dict[str, Any]:
        """What the policy chose over the run: how often each training property was selected, the co-selection
        counts, and the policy's entropy (mean per tenth of the run) against its maximum, ln(candidate pairs)."""
        names = self.dataset.property_names
        train = self.driver.train_properties
        tenths = np.array_split(np.arange(len(self.history)), min(10, len(self.history)) or 1)

        def mean_of(key: str, rows: np.ndarray) -> float | None:
            values = [value for i in rows if math.isfinite(value := self.history[i].get(key, math.nan))]
            return float(np.mean(values)) if values else None

        return {"meta_batches": len(self.history), "properties": [names[p] for p in train],
                "selected": [int(self.co_selection[i, i]) for i in range(len(train))],
                "co_selection": self.co_selection.tolist(),
                "entropy_by_tenth": [mean_of("entropy", rows) for rows in tenths],
                "entropy_max_by_tenth": [mean_of("entropy_max", rows) for rows in tenths]}

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
        telemetry.scalars({"eval/final_auc_mean": final.mean}, self.driver.iteration)
        selection = self.selection_record()
        late_entropy, late_maximum = selection["entropy_by_tenth"][-1], selection["entropy_max_by_tenth"][-1]
        telemetry.results({"auc_honest": final.mean, "auc_honest_std": final.std,
                           "query_loss": self.history[-1]["query_loss"] if self.history else None,
                           "selection_entropy": late_entropy / late_maximum if late_entropy is not None and
                           late_maximum else None}, self.driver.iteration)
        self._close_segment()
        best = max(self.periodic, key=lambda r: r["auc_mean"]) if self.periodic else None
        results = {
            "dataset": cfg.data.dataset, "shots": cfg.episode.shots, "seed": cfg.run.seed,
            "iterations": self.driver.iteration, "algorithm": cfg.meta.algorithm, "policy": cfg.scheduler.policy,
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
            "skipped_updates": self.driver.learner.skipped_updates,
            "selection": selection,
            "timing": self.timing(),
            "backend": {"name": cfg.run.backend, "workers": self.driver.workers.describe(),
                        "learner": cfg.ray.learner if cfg.run.backend == "ray" else "driver"},
            "git_commit": git_commit(),
            "segments": self.segments,
            "config": cfg.to_dict(),
        }
        self.layout.write_results(results)
        return results
