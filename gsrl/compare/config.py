"""Configuration of an algorithm comparison: one meta-training config, per-algorithm overrides, seeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gsrl.config import Config, ConfigError, RayResources, RunOutput, load_config
from gsrl.domains import Seed, describe_choices
from gsrl.errors import InvalidValue


@dataclass
class CompareConfig:
    name: str = "compare"
    # The meta-training config every algorithm starts from; a relative path is relative to the
    # compare config file.
    run_config: str = "../gsmeta/sider-10shot.yaml"
    # Overrides every algorithm shares (e.g. a shortened schedule), then each algorithm's own.
    schedule: list[str] = field(default_factory=list)
    algorithms: dict[str, list[str]] = field(default_factory=dict)  # table column -> overrides
    seeds: list[Seed] = field(default_factory=lambda: [0, 1, 2])
    # A column the others are compared with, paired by seed (e.g. "uniform" in a policy study); none: no
    # paired table.
    reference: str | None = None
    run: RunOutput = field(default_factory=lambda: RunOutput(output_dir="runs/compare"))
    ray: RayResources = field(default_factory=RayResources)  # worker_cpus/gpus: each run (one in-process worker)

    def validate(self) -> None:
        if not self.algorithms:
            raise ConfigError("algorithms: name at least one algorithm (column -> list of key=value overrides)")
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed")
        if self.reference is not None and self.reference not in self.algorithms:
            raise InvalidValue("reference", self.reference, describe_choices(self.algorithms) + " (the algorithms)")
        for column, overrides in self.algorithms.items():
            if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
                raise ConfigError(f"algorithms.{column} must be a list of key=value overrides, got {overrides!r}")

    def resolved_run_config(self, compare_file: str | Path | None) -> Path:
        path = Path(self.run_config)
        if not path.is_absolute() and compare_file is not None:
            path = (Path(compare_file).parent / path).resolve()
        return path

    def cell_config(self, column: str, seed: int, run_config: Path) -> Config:
        """The meta-training config of one (algorithm, seed) run: base config < schedule < algorithm <
        seed; each run is one in-process worker inside its own Ray task."""
        overrides = [*self.schedule, *self.algorithms[column], f"run.seed={seed}", f"name={column}-seed{seed}",
                     "run.backend=local", "run.workers=1", "run.progress=false", "eval.progress=false"]
        try:
            return load_config(run_config, overrides)
        except ConfigError as error:
            raise ConfigError(f"{self.name}: algorithms.{column}: {error}") from None
