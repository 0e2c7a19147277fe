"""Algorithms × seeds as parallel Ray tasks, each an ordinary meta-training run, then one table.

Every run has its own directory ``<output_dir>/runs/<column>-seed<seed>-<digest>``, the digest being
that of its resolved config and of its pretrained encoder file, if any. A finished run is read back
(from its directory, or from ``<output_dir>/runs.packed.jsonl``, where every finished run's config and
results are packed after each comparison) and an interrupted one resumes from its last checkpoint, so
the same command finishes a comparison that was stopped half-way, and comparisons that share a run (e.g.
GS-Meta in the main table and in the ablation table) run it once. The table and results of a comparison
go to ``<output_dir>/<name>/``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import ray

from gsrl.checkpoint import git_commit, identity_digest, sha256_of
from gsrl.compare.config import CompareConfig
from gsrl.compare.table import PUBLISHED_SOURCE, format_markdown, run_record, summarize
from gsrl.config import Config, load_config
from gsrl.data.roots import resolve_data_root
from gsrl.jobs.grid import RESULTS_FILE, GridReport, RunPack, run_grid, write_grid_report
from gsrl.jobs.train import Trainer
from gsrl.models.checkpoints import resolve_checkpoint


def run_meta_training(config: Config, run_dir: Path) -> dict[str, Any]:
    """results.json of the run in run_dir: read back when finished, else run (or resume) it."""
    finished = run_dir / "results.json"
    if finished.exists():
        return json.loads(finished.read_text())
    with Trainer(config, run_dir, resume=(run_dir / "config.yaml").exists()) as trainer:
        return trainer.run()


def run_directory(output_dir: Path, config: Config) -> Path:
    """Where the run of this exact config lives: any comparison asking for it finds it there."""
    return output_dir / "runs" / f"{config.name}-{identity_digest(run_identity(config))}"


def run_identity(config: Config) -> dict[str, Any]:
    """What decides a run: its config and, with a pretrained encoder, that file's content, so a checkpoint
    replaced under the same name starts new runs instead of reading back the old encoder's results."""
    identity = config.to_dict()
    if config.run.precision == "fp32":  # every run had fp32 before the key existed: their directories stay theirs
        del identity["run"]["precision"]
    if config.encoder.pretrained:
        checkpoint = resolve_checkpoint(config.encoder.pretrained, resolve_data_root(config.data.root))
        identity["encoder_sha256"] = sha256_of(checkpoint)
    return identity


@ray.remote
def _run_task(config: Config, run_dir: str, column: str) -> dict[str, Any]:
    return run_record(column, run_meta_training(config, Path(run_dir)))


def run_comparison(config: CompareConfig, compare_file: str | Path | None, finished_only: bool = False) -> GridReport:
    """Run every (algorithm, seed) on the connected Ray cluster; write runs.jsonl, results.json, table.md.
    `finished_only`: start or resume nothing, and write the table of the runs finished so far (a long
    comparison read while it goes, or between the sessions that run it)."""
    run_config = config.resolved_run_config(compare_file)
    output_dir = Path(config.run.output_dir) / config.name
    # Seed by seed, so a comparison stopped early has whole seeds of every column to pair.
    cells = {(column, seed): config.cell_config(column, seed, run_config)
             for seed in config.seeds for column in config.algorithms}
    directories = {key: run_directory(Path(config.run.output_dir), cell) for key, cell in cells.items()}
    pack = RunPack(Path(config.run.output_dir) / "runs")
    finished = {key: run_record(key[0], results) for key, directory in directories.items()
                if (results := pack.results(directory)) is not None}
    to_run = {key: cell for key, cell in cells.items() if not finished_only or key in finished}
    outcome = run_grid(
        _run_task, {key: (cell, str(directories[key]), key[0]) for key, cell in to_run.items()},
        {"num_cpus": config.ray.worker_cpus, "num_gpus": config.ray.worker_gpus}, output_dir,
        to_record=lambda record: record,
        describe=lambda key, r: f"{key[0]} seed {key[1]}: paper {r['paper_auc']:.4f} honest {r['honest_auc']:.4f}",
        finished=finished,
    )
    pack.pack()
    wall_seconds = outcome.wall_seconds
    records = outcome.runs
    summary = summarize(records, list(config.algorithms), config.reference)
    failed = {tuple(failure["key"]) for failure in outcome.failures}
    unfinished = [{"column": column, "seed": seed} for column, seed in cells
                  if (column, seed) not in outcome.results and (column, seed) not in failed]
    any_cell = next(iter(cells.values()))
    note = (f"{any_cell.data.dataset}, {any_cell.episode.shots}-shot; seeds {list(config.seeds)}; "
            f"{_schedule(any_cell, load_config(run_config))}. Paper protocol: best of the periodic one-draw "
            f"evaluations; honest: final model, {any_cell.eval.final_draws} support draws per property. "
            f"Wall time per run includes evaluations; meta-it/s counts meta-iterations alone. "
            f"Published: {PUBLISHED_SOURCE}. "
            f"Comparison wall time {wall_seconds:.0f} s on {ray.cluster_resources().get('CPU', 0):.0f} CPUs.")
    note += outcome.failures_sentence()
    if unfinished:
        note += f" {len(unfinished)} of {len(cells)} runs have not finished yet (see {RESULTS_FILE})."
    payload = {
        "config": dataclasses.asdict(config), "run_config": str(run_config), "git_commit": git_commit(),
        "wall_seconds": wall_seconds, "summary": summary, "runs": records, "failures": outcome.failures,
        "unfinished": unfinished, "finished_only": finished_only,
        "column_configs": {column: cells[(column, config.seeds[0])].to_dict() for column in config.algorithms},
    }
    table = format_markdown(summary, f"Meta-learning algorithms: {config.name}", note)
    return write_grid_report(output_dir, records, outcome.failures, summary, payload, table)


def _schedule(cell: Config, reference: Config) -> str:
    """The schedule the runs used, and whether it is shorter than the run config's own."""
    text = f"{cell.run.iterations} meta-iterations, evaluation every {cell.eval.every}"
    if (cell.run.iterations, cell.eval.every) != (reference.run.iterations, reference.eval.every):
        text += (f" (shortened schedule: the run config, as published, has {reference.run.iterations} "
                 f"meta-iterations, evaluation every {reference.eval.every})")
    return text
