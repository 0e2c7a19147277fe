"""Typed run configuration: dataclasses, YAML loading with `base:` inheritance, `key=value` overrides.

Every option a run uses lives here, so a resolved config file fully describes a run and an unknown
key (a typo) is an error that names the key and the file, never a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gsrl.errors import ConfigError
from gsrl.meta.algorithms import ALGORITHMS
from gsrl.meta.config import MetaConfig
from gsrl.models.config import EncoderConfig, NetworkConfig, RelationConfig

__all__ = ["Config", "ConfigError", "DataConfig", "DataParallelRay", "DataParallelRun", "DataPaths",
           "EncoderConfig", "EpisodeConfig", "EvalConfig", "MetaConfig", "RayConfig", "RayResources",
           "RelationConfig", "RunConfig", "RunOutput", "RunPlace", "SchedulerConfig", "check_data_parallel_device",
           "config_from_dict", "load_config", "parse_override", "validate"]


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads 1e-4 (no decimal point) as a float, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _load_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


# ---------------------------------------------------------------------------------------------------------
# The shared core: every job's config has these three sections, with these key names and meanings.

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class DataPaths:
    """`data`: where a job reads data."""

    root: str | None = None  # data root; None means $GSRL_DATA_ROOT
    cache_dir: str | None = None  # processed-data cache; None means $GSRL_CACHE_DIR or ~/.cache/gsrl


@dataclass
class RunOutput:
    """`run` of a job that only writes (a grid: its cells have their own `run`): output_dir/name is its folder."""

    output_dir: str = "runs"


@dataclass
class RunPlace(RunOutput):
    """`run`: where a job writes (output_dir/name is its run directory) and how it computes."""

    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # torch intra-op threads of each process; None keeps torch's default

    def validate(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"run.device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"run.threads must be >= 1 (or null), got {self.threads}")


@dataclass
class RayResources:
    """`ray`: the cluster, and what each worker (episode-worker actor, Ray Train worker or grid task) asks of it."""

    address: str | None = None  # None: start a local cluster in-process (loopback only); "auto" or HOST:PORT joins one
    worker_cpus: float = 1.0
    worker_gpus: float = 0.0  # fractional values share a GPU between workers

    def validate(self) -> None:
        if self.worker_cpus < 0 or self.worker_gpus < 0:
            raise ConfigError(f"ray.worker_cpus and ray.worker_gpus must be >= 0, got {self.worker_cpus}, "
                              f"{self.worker_gpus}")


@dataclass
class DataParallelRun(RunPlace):
    """`run` of a data-parallel Ray Train job (pretraining, the molecular VGAE): `workers` ranks, each asking
    for `ray.worker_cpus` / `ray.worker_gpus`; it trains on GPUs (NCCL) exactly when `ray.worker_gpus` > 0."""

    workers: int = 1

    def validate(self) -> None:
        super().validate()
        if self.workers < 1:
            raise ConfigError(f"run.workers must be >= 1, got {self.workers}")


@dataclass
class DataParallelRay(RayResources):
    max_failures: int = 2  # worker-group restarts Ray Train attempts from the last checkpoint


def check_data_parallel_device(run: DataParallelRun, ray: DataParallelRay) -> None:
    """run.device must agree with where the workers are placed: on GPUs exactly when ray.worker_gpus > 0."""
    if run.device == "cuda" and ray.worker_gpus <= 0:
        raise ConfigError("run.device is cuda but ray.worker_gpus is 0: give each worker a GPU")
    if run.device == "cpu" and ray.worker_gpus > 0:
        raise ConfigError(f"run.device is cpu but ray.worker_gpus is {ray.worker_gpus}: set it to 0 for CPU workers")


# ---------------------------------------------------------------------------------------------------------
# Meta-training (`gsrl train`): the shared sections extended, and the sections of GS-Meta and its baselines.


@dataclass
class DataConfig(DataPaths):
    dataset: str = "sider"


@dataclass
class EpisodeConfig:
    shots: int = 10  # K actives + K inactives in the support set
    train_queries: int = 16
    train_auxiliary: int | None = None  # None: every other training property
    test_auxiliary: int | None = None  # None: every training property
    eval_context_queries: int = 16  # unlabelled query molecules present in the test-time inner step


@dataclass
class SchedulerConfig:
    policy: str = "gsmeta"  # registry name, or "package.module:ClassName" for a user's own policy
    pool_size: int = 10  # properties in the candidate pool (capped by the number of training properties)
    pairs: int = 5  # B pairs of subgraphs selected per meta-iteration
    reward: str = "contrastive"  # registry name in envs.rewards
    lr: float = 5e-4
    weight_decay: float = 5e-5
    grad_clip: float = 1.0
    hidden_dim: int = 10
    temperature: float = 1.0
    temperature_step: int = 500  # tau = (iteration // temperature_step + 1) * temperature
    options: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments for the policy class


@dataclass
class EvalConfig:
    every: int = 100
    at_start: bool = False  # also evaluate the untrained model (iteration 0), e.g. to show a learning curve
    final_draws: int = 5  # support draws averaged for the honest (final-model) figure
    batch_size: int = 128
    progress: bool = True


@dataclass
class RunConfig(RunPlace):
    iterations: int = 2000
    seed: int = 0
    checkpoint_every: int = 100
    backend: str = "local"  # WorkerGroup backend: local (in-process) | ray (EpisodeWorker actors)
    workers: int = 1  # episode workers; specs are split into contiguous shards, one per worker
    progress: bool = True
    picture_every: int = 100  # refresh of the scheduler co-selection picture


@dataclass
class RayConfig(RayResources):
    """Where the Ray backend's actors run (used when run.backend is ray)."""

    learner: str = "driver"  # driver | actor (the MetaLearner in its own actor, e.g. on its own GPU)
    learner_cpus: float = 1.0
    learner_gpus: float = 0.0
    placement: str = "pack"  # pack | spread (workers on distinct nodes: a STRICT_SPREAD placement group)
    max_worker_restarts: int = 3  # Ray restarts a crashed worker at most this many times over the run
    max_spec_retries: int = 2  # re-runs of the same specs after a failure before they are reported


@dataclass
class Config:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    relation: RelationConfig = field(default_factory=RelationConfig)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def network(self) -> NetworkConfig:
        """The sections an episode network is built from."""
        return NetworkConfig(self.encoder, self.relation, self.relation_top_k)

    @property
    def relation_top_k(self) -> int:
        if self.relation.top_k is not None:
            return self.relation.top_k
        return max(self.episode.shots - 1, 1)


def _coerce(value: Any, annotation: Any, key: str, source: str) -> Any:
    """Check `value` against a field annotation, converting YAML ints to floats where a float is expected."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{source}: key '{key}' has an invalid value {value!r}")
    if annotation is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: key '{key}' expects a list, got {value!r}")
        (item_type,) = typing.get_args(annotation)
        return [_coerce(v, item_type, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{key}' expects a mapping, got {value!r}")
        return dict(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: key '{key}' expects a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: key '{key}' expects an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key '{key}' expects true/false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: key '{key}' expects a string, got {value!r}")
        return value
    raise ConfigError(f"{source}: key '{key}' has an unsupported type {annotation}")


def _apply(target: Any, updates: dict[str, Any], source: str, prefix: str = "") -> None:
    """Write `updates` into the dataclass `target`, rejecting keys the schema does not have."""
    hints = typing.get_type_hints(type(target))
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{source}: unknown config key '{dotted}' (known here: {known})")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: key '{dotted}' must be a mapping")
            _apply(current, value, source, prefix=f"{dotted}.")
        else:
            setattr(target, key, _coerce(value, hints[key], dotted, source))


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[dict[str, Any], str]]:
    """Layers of a config file, base first; `base:` names another YAML relative to this file."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: circular 'base:' chain")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    content = _load_yaml(path.read_text()) or {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    layers: list[tuple[dict[str, Any], str]] = []
    base = content.pop("base", None)
    if base is not None:
        layers.extend(_read_yaml(path.parent / base, seen + (path,)))
    layers.append((content, str(path)))
    return layers


def parse_override(text: str) -> dict[str, Any]:
    """Turn 'meta.inner_lr=0.1' into {'meta': {'inner_lr': 0.1}}; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value")
    dotted, raw = text.split("=", 1)
    value = _load_yaml(raw) if raw != "" else None
    nested: dict[str, Any] = {}
    cursor = nested
    parts = dotted.strip().split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return nested


S = typing.TypeVar("S")


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = (),
                schema: type[S] = Config) -> S:
    """Defaults, then the YAML chain at `path` (base first), then command-line overrides.

    `schema` is the dataclass of the workload (meta-training by default); any dataclass with
    typed fields works, and one with a `validate()` method has it called at the end."""
    config = schema()
    if path is not None:
        for layer, source in _read_yaml(Path(path)):
            _apply(config, layer, source)
    for text in overrides:
        _apply(config, parse_override(text), f"override '{text}'")
    _validate(config)
    return config


def _validate(config: Any) -> None:
    """Each section that has a `validate()` checks itself (the shared ones everywhere), then the whole."""
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if dataclasses.is_dataclass(value) and hasattr(value, "validate"):
            value.validate()
    if isinstance(config, Config):
        validate(config)
    elif hasattr(config, "validate"):
        config.validate()


def config_from_dict(values: dict[str, Any], source: str = "<dict>", schema: type[S] = Config) -> S:
    """A config of `schema` from nested plain values (e.g. a resolved config sent to a worker)."""
    config = schema()
    _apply(config, values, source)
    _validate(config)
    return config


def validate(config: Config) -> None:
    """Cross-field checks that types alone cannot express."""
    checks = [
        (config.episode.shots >= 1, "episode.shots must be >= 1"),
        (config.episode.train_queries >= 2, "episode.train_queries must be >= 2 (one of each class)"),
        (config.meta.inner_steps >= 0, "meta.inner_steps must be >= 0"),
        (config.scheduler.pairs >= 1, "scheduler.pairs must be >= 1"),
        (config.scheduler.pool_size >= 1, "scheduler.pool_size must be >= 1"),
        (config.run.backend in ("local", "ray"), "run.backend must be local or ray"),
        (config.eval.final_draws >= 1, "eval.final_draws must be >= 1"),
        (config.run.workers >= 1, "run.workers must be >= 1"),
        (config.ray.learner in ("driver", "actor"), "ray.learner must be driver or actor"),
        (config.ray.placement in ("pack", "spread"), "ray.placement must be pack or spread"),
        (config.ray.max_spec_retries >= 0, "ray.max_spec_retries must be >= 0"),
    ]
    checks.append((config.meta.algorithm in ALGORITHMS,
                   f"meta.algorithm must be one of {sorted(ALGORITHMS)}, got '{config.meta.algorithm}'"))
    # Typos are caught here; whether the configured algorithm's network has the group, when it is built.
    groups = {"all"}.union(*(algorithm.network.parameter_groups for algorithm in ALGORITHMS.values()))
    unknown = [g for g in config.meta.adapt if g not in groups]
    checks.append((not unknown, f"meta.adapt has unknown groups {unknown}; choose from {sorted(groups)}"))
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
