"""The one grid skeleton: independent runs (cells) as Ray tasks, collected as they finish, then one report.

Every grid job (the algorithm comparison, the fine-tuning benchmark, the link-prediction sweep) is
cells -> `run_grid` -> summary and table of its own -> `write_grid_report`. Each finished run is
appended to a JSON-lines progress file at once, so a long grid shows its results while it goes; a run
that raises is recorded as a failure with its key and the others go on. Every grid ends the same way:
`results.json` and `table.md` in its output folder.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError

from gsrl.checkpoint import atomic_write_json

__all__ = ["GridOutcome", "GridReport", "failures_sentence", "run_grid", "run_task_grid", "write_grid_report"]

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
TABLE_FILE = "table.md"
PROGRESS_FILE = "runs.jsonl"  # one line per finished run, written as runs finish


@dataclass
class GridOutcome:
    results: dict[Hashable, Any] = field(default_factory=dict)  # key -> the task's return value
    failures: list[dict[str, Any]] = field(default_factory=list)  # {key, error}
    runs: list[Any] = field(default_factory=list)  # the finished runs' results, in the grid's cell order
    wall_seconds: float = 0.0

    def failures_sentence(self) -> str:
        """The table note's mention of failed runs (empty when none failed)."""
        return failures_sentence(self.failures, len(self.results) + len(self.failures))


def run_grid(task: Any, cells: Mapping[Hashable, Sequence[Any]], resources: Mapping[str, float], output_dir: Path,
             to_record: Callable[[Any], dict[str, Any]], describe: Callable[[Hashable, Any], str]) -> GridOutcome:
    """Run the Ray remote function ``task(*arguments)`` for every cell (key -> arguments) with ``resources``
    (``num_cpus``, ``num_gpus``) on the connected cluster; results come back keyed and in cell order."""
    started = time.perf_counter()
    submitted = {task.options(**resources).remote(*arguments): key for key, arguments in cells.items()}
    outcome = run_task_grid(submitted, output_dir / PROGRESS_FILE, to_record, describe)
    outcome.runs = [outcome.results[key] for key in cells if key in outcome.results]
    outcome.wall_seconds = time.perf_counter() - started
    return outcome


def run_task_grid(submitted: dict[ray.ObjectRef, Hashable], progress_path: Path,
                  to_record: Callable[[Any], dict[str, Any]], describe: Callable[[Hashable, Any], str]) -> GridOutcome:
    """Wait for every submitted task; ``to_record`` turns a result into its progress line."""
    pending = dict(submitted)
    total = len(pending)
    outcome = GridOutcome()
    progress_path.parent.mkdir(parents=True, exist_ok=True)
    with open(progress_path, "w", encoding="utf-8") as progress:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            key = pending.pop(ref)
            try:
                result = ray.get(ref)
            except RayError as err:
                logger.error("run %s failed: %s", key, err)
                outcome.failures.append({"key": list(key) if isinstance(key, tuple) else key, "error": str(err)})
                continue
            outcome.results[key] = result
            progress.write(json.dumps(to_record(result)) + "\n")
            progress.flush()
            logger.info("[%d/%d] %s", total - len(pending), total, describe(key, result))
    return outcome


@dataclass
class GridReport:
    runs: list[Any]  # finished runs, in the grid's configured order
    failures: list[dict[str, Any]]  # the runs that raised, with their keys and errors
    summary: dict[str, Any]
    results_path: Path
    table_path: Path


def failures_sentence(failures: list[dict[str, Any]], total: int) -> str:
    """The table note's mention of failed runs (empty when none failed)."""
    return f" {len(failures)} of {total} runs failed (see {RESULTS_FILE})." if failures else ""


def write_grid_report(output_dir: Path, runs: list[Any], failures: list[dict[str, Any]], summary: dict[str, Any],
                      payload: dict[str, Any], table: str) -> GridReport:
    """Write results.json (payload) and table.md (markdown) atomically enough to read back any time."""
    results_path, table_path = output_dir / RESULTS_FILE, output_dir / TABLE_FILE
    atomic_write_json(results_path, payload)
    table_path.write_text(table, encoding="utf-8")
    return GridReport(runs, failures, summary, results_path, table_path)
