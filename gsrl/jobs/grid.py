"""The one grid skeleton: independent runs (cells) as Ray tasks, collected as they finish, then one report.

Every grid job (the algorithm comparison, the fine-tuning benchmark, the link-prediction sweep) is
cells -> `run_grid` -> summary and table of its own -> `write_grid_report`. A cell whose run finished
before is read back instead of submitted: from its run directory, or from the grid's packed records
(`RunPack`: one JSON-lines file that keeps finished runs' configs and results where their folders, with
checkpoints and events, are not kept, e.g. in the repository). Each finished run is
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

import yaml

from gsrl.checkpoint import atomic_write_bytes, atomic_write_json

__all__ = ["GridOutcome", "GridReport", "RunPack", "failures_sentence", "run_grid", "run_task_grid",
           "write_grid_report"]

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
TABLE_FILE = "table.md"
PROGRESS_FILE = "runs.jsonl"  # one line per finished run, written as runs finish
PACK_FILE = "runs.packed.jsonl"  # finished runs of a runs/ folder, one line each, beside it


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
             to_record: Callable[[Any], dict[str, Any]], describe: Callable[[Hashable, Any], str],
             finished: Mapping[Hashable, Any] | None = None) -> GridOutcome:
    """Run the Ray remote function ``task(*arguments)`` for every cell (key -> arguments) with ``resources``
    (``num_cpus``, ``num_gpus``) on the connected cluster; cells in ``finished`` (key -> result read back) are
    not submitted. Results come back keyed and in cell order."""
    started = time.perf_counter()
    finished = finished or {}
    submitted = {task.options(**resources).remote(*arguments): key
                 for key, arguments in cells.items() if key not in finished}
    read_back = {key: result for key, result in finished.items() if key in cells}
    outcome = run_task_grid(submitted, output_dir / PROGRESS_FILE, to_record, describe, read_back)
    outcome.runs = [outcome.results[key] for key in cells if key in outcome.results]
    outcome.wall_seconds = time.perf_counter() - started
    return outcome


class RunPack:
    """The finished runs of one ``runs/`` folder of a grid, packed as ``runs.packed.jsonl`` beside it.

    Each line is ``{"run": folder name, "config": config.yaml, "results": the result file}``, sorted by run,
    so the file changes only where runs do. A run's folder still wins when it holds its result file."""

    def __init__(self, runs_folder: Path, result_file: str = RESULTS_FILE):
        self.runs_folder = Path(runs_folder)
        self.path = self.runs_folder.parent / PACK_FILE
        self.result_file = result_file
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    entry = json.loads(line)
                    self.entries[entry["run"]] = entry
                except (ValueError, KeyError) as error:
                    raise ValueError(f"{self.path}, line {number}: not a packed run ({error})") from None

    def results(self, run_dir: Path) -> dict[str, Any] | None:
        """The finished run's results: from its folder, else from the pack; None when it has not finished."""
        file = Path(run_dir) / self.result_file
        if file.is_file():
            return json.loads(file.read_text(encoding="utf-8"))
        entry = self.entries.get(Path(run_dir).name)
        return None if entry is None else entry["results"]

    def pack(self) -> Path:
        """Add every finished run of the folder (config.yaml and result file present) and rewrite the pack."""
        for run_dir in sorted(self.runs_folder.glob("*/")):
            config, results = run_dir / "config.yaml", run_dir / self.result_file
            if config.is_file() and results.is_file():
                self.entries[run_dir.name] = {"run": run_dir.name, "config": yaml.safe_load(config.read_text()),
                                              "results": json.loads(results.read_text(encoding="utf-8"))}
        lines = [json.dumps(self.entries[name], sort_keys=True) + "\n" for name in sorted(self.entries)]
        atomic_write_bytes(self.path, "".join(lines).encode("utf-8"))
        return self.path


def run_task_grid(submitted: dict[ray.ObjectRef, Hashable], progress_path: Path,
                  to_record: Callable[[Any], dict[str, Any]], describe: Callable[[Hashable, Any], str],
                  read_back: Mapping[Hashable, Any] | None = None) -> GridOutcome:
    """Wait for every submitted task; ``to_record`` turns a result into its progress line. Results read back
    (key -> result) count as finished and head the progress file."""
    pending = dict(submitted)
    total = len(pending)
    outcome = GridOutcome(results=dict(read_back or {}))
    progress_path.parent.mkdir(parents=True, exist_ok=True)
    with open(progress_path, "w", encoding="utf-8") as progress:
        for result in outcome.results.values():
            progress.write(json.dumps(to_record(result)) + "\n")
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
