"""What every data-parallel Ray Train job of gsrl shares (encoder pretraining, the molecular VGAE).

One ``TorchTrainer`` per job (gloo on CPUs, NCCL on GPUs) whose checkpoints live in the run directory,
so running the same job again resumes from the last finished epoch; on the embedded cluster its
process group listens on loopback only (gsrl/ray_internals.py) and a job the cluster cannot
place fails before it featurizes anything (``connect_for``); rank 0 alone writes TensorBoard and
checkpoint files, every rank reports each epoch (Ray Train's barrier). Checkpoints written on GPUs load on
CPUs too (the report task, a resume without GPUs, a user's plain torch.load of the encoder or model file).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import ray
import ray.train
import torch
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from gsrl.cluster import connect, require_resources
from gsrl.checkpoint import load_on_cpu
from gsrl.config import DataParallelRay, DataParallelRun
from gsrl.data.corpora import CorpusManifest
from gsrl.ray_internals import LoopbackTorchConfig
from gsrl.rundir import CHECKPOINTS, RunDirectory
from gsrl.telemetry import Telemetry

__all__ = ["DataParallelJob", "connect_for", "copy_outputs", "end_epoch", "fit", "rank_shards", "resume_and_wrap",
           "start_worker", "steps_per_epoch", "telemetry"]


class DataParallelJob(Protocol):
    """The sections every data-parallel job's config has (PretrainConfig, MolecularVGAEConfig)."""

    run: DataParallelRun
    ray: DataParallelRay


def _worker_resources(ray_settings: DataParallelRay) -> dict[str, float]:
    gpus = ray_settings.worker_gpus
    return {"CPU": ray_settings.worker_cpus, **({"GPU": gpus} if gpus > 0 else {})}


def connect_for(job: DataParallelJob) -> None:
    """Join or start Ray for ``job``; on the embedded cluster, workers it lacks the CPUs or GPUs for raise
    ClusterTooSmall here, before the job spends minutes featurizing, rather than Ray Train waiting for ever."""
    connect(job.ray.address)
    require_resources({key: job.run.workers * amount for key, amount in _worker_resources(job.ray).items()},
                      "run.workers × ray.worker_cpus/worker_gpus", embedded=job.ray.address is None)


def rank_shards(shard_count: int, rank: int, world: int) -> list[int]:
    """The corpus shards rank ``rank`` of ``world`` trains on: r, r + W, r + 2W, ..."""
    return list(range(rank, shard_count, world))


def steps_per_epoch(manifest: CorpusManifest, world: int, batch_size: int) -> int:
    """Steps every rank runs per epoch: the smallest rank's molecule count over the batch size."""
    shards = len(manifest.shards)
    per_rank = [sum(manifest.shards[i].molecules for i in rank_shards(shards, r, world)) for r in range(world)]
    return max(min(per_rank) // batch_size, 1)


def fit(loop: Callable[[dict[str, Any]], None], loop_config: dict[str, Any], run_directory: Path,
        job: DataParallelJob) -> ray.train.Result:
    """Run ``loop`` on ``job.run.workers`` Ray Train workers, checkpointing into the run directory's checkpoints/;
    Ray restarts the group from the last checkpoint on failure. On the embedded cluster (no ``job.ray.address``;
    ``connect_for`` checked that it can place the workers) the process group listens on loopback only."""
    gpu = job.ray.worker_gpus > 0
    resources = _worker_resources(job.ray)
    torch_config = LoopbackTorchConfig if job.ray.address is None else TorchConfig
    trainer = TorchTrainer(
        loop,
        train_loop_config=loop_config,
        torch_config=torch_config(backend="nccl" if gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=job.run.workers, use_gpu=gpu, resources_per_worker=resources),
        run_config=RunConfig(name=CHECKPOINTS, storage_path=str(run_directory),
                             checkpoint_config=CheckpointConfig(num_to_keep=3),
                             failure_config=FailureConfig(max_failures=job.ray.max_failures)),
    )
    return trainer.fit()


def start_worker(threads: int | None, seed: int) -> tuple[int, int]:
    """A Ray Train worker's (rank, world size), after setting its torch threads and seeding torch."""
    context = ray.train.get_context()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    return context.get_world_rank(), context.get_world_size()


def _restored_state(file_name: str) -> dict[str, Any] | None:
    """The state saved in ``file_name`` of the checkpoint this worker resumes from, if any."""
    checkpoint = ray.train.get_checkpoint()
    if not checkpoint:
        return None
    with checkpoint.as_directory() as directory:
        return load_on_cpu(Path(directory) / file_name)


def resume_and_wrap(module: torch.nn.Module, make_optimizer: Callable[[Iterable[torch.nn.Parameter]],
                    torch.optim.Optimizer], state_file: str, module_key: str
                    ) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.device, int]:
    """Move ``module`` to this worker's device, build its optimizer, load both from the checkpoint this
    worker resumes from (if any), and wrap ``module`` for data parallelism. The move comes first because
    Optimizer.load_state_dict puts its state (Adam's moments) on the parameters' device as they are then.
    Returns (wrapped module, optimizer, device, first epoch)."""
    device = ray.train.torch.get_device()
    module.to(device)
    optimizer = make_optimizer(module.parameters())
    state = _restored_state(state_file)
    if state:
        module.load_state_dict(state[module_key])
        optimizer.load_state_dict(state["optimizer"])
    return ray.train.torch.prepare_model(module), optimizer, device, state["epoch"] if state else 0


def telemetry(run_directory: str, config: dict[str, Any]) -> Telemetry:
    """The job's TensorBoard writer (rank 0 alone opens one), in the run directory's tensorboard/."""
    return Telemetry(RunDirectory(Path(run_directory)).tensorboard, config)


def end_epoch(epoch: int, metrics: dict[str, float], rank: int, telemetry: Telemetry | None, prefix: str,
              write_files: Callable[[Path], None]) -> None:
    """Rank 0 logs ``<prefix>/<metric>`` and checkpoints what ``write_files`` writes; every rank reports."""
    if rank != 0:
        ray.train.report({"epoch": epoch, **metrics})
        return
    telemetry.scalars({f"{prefix}/{key}": value for key, value in metrics.items()}, epoch)
    telemetry.results(metrics, epoch)
    telemetry.flush()
    with tempfile.TemporaryDirectory() as directory:
        write_files(Path(directory))
        ray.train.report({"epoch": epoch, **metrics}, checkpoint=ray.train.Checkpoint.from_directory(directory))


def copy_outputs(result: ray.train.Result, run_directory: Path, names: tuple[str, ...]) -> None:
    """Copy files of the job's final checkpoint into the run directory."""
    with result.checkpoint.as_directory() as directory:
        for name in names:
            (Path(run_directory) / name).write_bytes((Path(directory) / name).read_bytes())
