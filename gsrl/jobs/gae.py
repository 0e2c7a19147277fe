"""Graph-autoencoder link prediction: one job as a Ray task, and the sweep of datasets × models × seeds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ray

from gsrl.checkpoint import git_commit
from gsrl.cluster import connect
from gsrl.gae.link.config import LinkPredictionConfig, LinkSweepConfig
from gsrl.gae.link.sweep import cell_configs, format_markdown, run_directory, summarize
from gsrl.gae.link.train import LinkResult, finished_result, train_link_predictor
from gsrl.jobs.grid import GridReport, RunPack, run_grid, write_grid_report


def run_link_job(config: LinkPredictionConfig, run_dir: Path, resume: bool) -> LinkResult:
    """One link-prediction job in a Ray task with the config's resources (joins or starts Ray first)."""
    connect(config.ray.address)
    task = ray.remote(train_link_predictor).options(num_cpus=config.ray.worker_cpus, num_gpus=config.ray.worker_gpus)
    return ray.get(task.remote(config, run_dir, resume))


@ray.remote
def _link_task(config: LinkPredictionConfig, run_dir: str) -> LinkResult:
    return train_link_predictor(config, Path(run_dir), resume=True)


def run_sweep(sweep: LinkSweepConfig) -> GridReport:
    """Run every cell on the running Ray cluster (finished ones are read back from their folders or the pack)
    and write runs.jsonl, results.json and table.md; then pack the finished runs."""
    output_dir = Path(sweep.run.output_dir) / sweep.name
    cells = cell_configs(sweep)
    directories = {key: run_directory(output_dir, config) for key, config in cells.items()}
    pack = RunPack(output_dir / "runs")
    finished = {}
    for key, directory in directories.items():
        saved = pack.results(directory)
        result = LinkResult.from_dict(saved) if saved is not None else finished_result(directory)
        if result is not None:
            finished[key] = result
    read_back = len(finished)
    outcome = run_grid(
        _link_task, {key: (config, str(directories[key])) for key, config in cells.items()},
        {"num_cpus": sweep.ray.worker_cpus, "num_gpus": sweep.ray.worker_gpus}, output_dir,
        to_record=LinkResult.to_dict, finished=finished,
        describe=lambda key, r: f"{key[0]} / {key[1]} / seed {key[2]}: test AUC {r.test_auc:.4f} AP {r.test_ap:.4f}",
    )
    pack.pack()
    wall_seconds = outcome.wall_seconds
    results = outcome.runs
    summary = summarize(results, sweep)
    note = (f"Test AUC / AP (%) at the epoch with the best validation AUC, mean ± std over seeds "
            f"{list(sweep.seeds)}; edges split {100 * (1 - sweep.job.val_fraction - sweep.job.test_fraction):.0f} / "
            f"{100 * sweep.job.val_fraction:.0f} / {100 * sweep.job.test_fraction:.0f}, held-out negatives never "
            f"edges; {sweep.job.epochs} epochs. Paper: Kipf & Welling 2016, Table 1. This invocation: "
            f"{len(cells) - read_back} jobs run (or resumed) in {wall_seconds:.0f} s wall time, {read_back} "
            f"finished jobs read back.")
    note += outcome.failures_sentence()
    payload = {
        "config": dataclasses.asdict(sweep), "git_commit": git_commit(), "wall_seconds": wall_seconds,
        "jobs_run": len(cells) - read_back, "jobs_read_back": read_back,
        "ray_cpus": ray.cluster_resources().get("CPU"), "summary": summary,
        "runs": [r.to_dict() for r in results], "failures": outcome.failures,
    }
    table = format_markdown(summary, f"Link prediction: {sweep.name}", note)
    return write_grid_report(output_dir, results, outcome.failures, summary, payload, table)
