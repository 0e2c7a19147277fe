"""A grid of independent runs (benchmark cells) as Ray tasks, collected as they finish.

Each finished run is appended to a JSON-lines progress file at once, so a long grid shows its
results while it goes; a run that raises is recorded as a failure with its key and the others go on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError

__all__ = ["GridOutcome", "run_task_grid"]

logger = logging.getLogger(__name__)


@dataclass
class GridOutcome:
    results: dict[Hashable, Any] = field(default_factory=dict)  # key -> the task's return value
    failures: list[dict[str, Any]] = field(default_factory=list)  # {key, error}


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
