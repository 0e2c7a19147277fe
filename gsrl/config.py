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
from typing import Annotated, Any

import yaml

from gsrl.domains import NonNegativeFloat, NonNegativeInt, OneOf, PositiveInt, Range, Seed, describe_choices
from gsrl.errors import ConfigError, InvalidValue
from gsrl.meta.algorithms import ALGORITHMS
from gsrl.meta.config import MetaConfig
from gsrl.models.config import EncoderConfig, NetworkConfig, RelationConfig
from gsrl.scheduling.config import SchedulerConfig
from gsrl.scheduling.policies import OPTIONAL_POLICIES, POLICIES
from gsrl.scheduling.rewards import REWARDS

__all__ = ["Config", "ConfigError", "DataConfig", "DataParallelRay", "DataParallelRun", "DataPaths",
           "EncoderConfig", "EpisodeConfig", "EvalConfig", "MetaConfig", "RayConfig", "RayResources",
           "RelationConfig", "RunConfig", "RunOutput", "RunPlace", "SchedulerConfig", "check_data_parallel_device",
           "config_from_dict", "load_config", "parse_override", "check_meta_training"]


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
PRECISIONS = ("fp32", "bf16")


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

    device: Annotated[str, OneOf(DEVICES)] = "auto"
    threads: PositiveInt | None = None  # torch intra-op threads of each process; None keeps torch's default
    # fp32, or bf16: matrix products in bfloat16 under torch.autocast (CUDA, or a CPU with bf16 instructions)
    precision: Annotated[str, OneOf(PRECISIONS)] = "fp32"


@dataclass
class RayResources:
    """`ray`: the cluster, and what each worker (episode-worker actor, Ray Train worker or grid task) asks of it."""

    address: str | None = None  # None: start a local cluster in-process (loopback only); "auto" or HOST:PORT joins one
    worker_cpus: NonNegativeFloat = 1.0
    worker_gpus: NonNegativeFloat = 0.0  # fractional values share a GPU between workers


@dataclass
class DataParallelRun(RunPlace):
    """`run` of a data-parallel Ray Train job (pretraining, the molecular VGAE): `workers` ranks, each asking
    for `ray.worker_cpus` / `ray.worker_gpus`; it trains on GPUs (NCCL) exactly when `ray.worker_gpus` > 0."""

    workers: PositiveInt = 1


@dataclass
class DataParallelRay(RayResources):
    max_failures: NonNegativeInt = 2  # worker-group restarts Ray Train attempts from the last checkpoint


def check_fp32_only(run: RunPlace, job: str) -> None:
    """Jobs whose loops have no mixed-precision path refuse bf16 rather than ignore it."""
    if run.precision != "fp32":
        raise InvalidValue("run.precision", run.precision, f"fp32 (the {job} runs in fp32)")


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
    shots: PositiveInt = 10  # K actives + K inactives in the support set
    train_queries: Annotated[int, Range(2)] = 16
    train_auxiliary: NonNegativeInt | None = None  # None: every other training property
    test_auxiliary: NonNegativeInt | None = None  # None: every training property
    eval_context_queries: NonNegativeInt = 16  # unlabelled query molecules present in the test-time inner step


@dataclass
class EvalConfig:
    every: PositiveInt = 100
    at_start: bool = False  # also evaluate the untrained model (iteration 0), e.g. to show a learning curve
    final_draws: PositiveInt = 5  # support draws averaged for the honest (final-model) figure
    batch_size: PositiveInt = 128
    progress: bool = True


@dataclass
class RunConfig(RunPlace):
    iterations: PositiveInt = 2000
    seed: Seed = 0
    checkpoint_every: PositiveInt = 100
    # WorkerGroup backend: local (in-process) or ray (EpisodeWorker actors)
    backend: Annotated[str, OneOf(("local", "ray"))] = "local"
    workers: PositiveInt = 1  # episode workers; specs are split into contiguous shards, one per worker
    progress: bool = True
    picture_every: PositiveInt = 100  # refresh of the scheduler co-selection picture


@dataclass
class RayConfig(RayResources):
    """Where the Ray backend's actors run (used when run.backend is ray)."""

    # driver, or actor: the MetaLearner in its own actor (e.g. on its own GPU)
    learner: Annotated[str, OneOf(("driver", "actor"))] = "driver"
    learner_cpus: NonNegativeFloat = 1.0
    learner_gpus: NonNegativeFloat = 0.0
    # pack, or spread: workers on distinct nodes (a STRICT_SPREAD placement group)
    placement: Annotated[str, OneOf(("pack", "spread"))] = "pack"
    max_worker_restarts: NonNegativeInt = 3  # Ray restarts a crashed worker at most this many times over the run
    max_spec_retries: NonNegativeInt = 2  # re-runs of the same specs after a failure before they are reported


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

    def validate(self) -> None:
        check_meta_training(self)

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
    if origin is typing.Annotated:
        base, *domains = typing.get_args(annotation)
        value = _coerce(value, base, key, source)
        for domain in domains:
            if not domain.admits(value):
                kind = {int: "an integer", float: "a number", str: "a string"}.get(base, "a value")
                raise ConfigError(f"{source}: {InvalidValue(key, value, domain.describe(kind))}")
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


def _apply(target: Any, updates: dict[str, Any], source: str, sources: dict[str, str], prefix: str = "") -> None:
    """Write `updates` into the dataclass `target`, rejecting keys the schema does not have and values a
    key does not take; `sources` records where each key was last set."""
    hints = typing.get_type_hints(type(target), include_extras=True)
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{source}: unknown config key '{dotted}' (known here: {known})")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: key '{dotted}' must be a mapping")
            _apply(current, value, source, sources, prefix=f"{dotted}.")
        else:
            setattr(target, key, _coerce(value, hints[key], dotted, source))
            sources[dotted] = source


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
    typed fields works, and every section with a `validate()` method has it called at the end."""
    config = schema()
    sources: dict[str, str] = {}
    if path is not None:
        for layer, source in _read_yaml(Path(path)):
            _apply(config, layer, source, sources)
    for text in overrides:
        _apply(config, parse_override(text), f"override '{text}'", sources)
    _validate(config, sources)
    return config


def config_from_dict(values: dict[str, Any], source: str = "<dict>", schema: type[S] = Config) -> S:
    """A config of `schema` from nested plain values (e.g. a resolved config sent to a worker)."""
    config = schema()
    sources: dict[str, str] = {}
    _apply(config, values, source, sources)
    _validate(config, sources)
    return config


def _validate(config: Any, sources: dict[str, str]) -> None:
    """Run every section's `validate()`, innermost first; a value it refuses is reported with where it was set."""
    try:
        _validate_sections(config)
    except InvalidValue as error:
        source = sources.get(error.key, "default")
        raise ConfigError(f"{source}: {error}") from None


def _validate_sections(section: Any, prefix: str = "") -> None:
    for field_ in dataclasses.fields(section):
        value = getattr(section, field_.name)
        if dataclasses.is_dataclass(value):
            _validate_sections(value, f"{prefix}{field_.name}.")
    if hasattr(section, "validate"):
        try:
            section.validate()
        except InvalidValue as error:
            raise InvalidValue(prefix + error.key, error.value, error.allowed) from None


def check_meta_training(config: Config) -> None:
    """What a key's type cannot say: registry names, and keys that must agree."""
    if config.meta.algorithm not in ALGORITHMS:
        raise InvalidValue("meta.algorithm", config.meta.algorithm, describe_choices(ALGORITHMS))
    # Typos are caught here; whether the configured algorithm's network has the group, when it is built.
    groups = {"all"}.union(*(algorithm.network.parameter_groups for algorithm in ALGORITHMS.values()))
    unknown = [g for g in config.meta.adapt if g not in groups]
    if unknown:
        raise InvalidValue("meta.adapt", unknown, "parameter groups from " + describe_choices(groups))
    if ":" not in config.scheduler.policy and config.scheduler.policy not in POLICIES | OPTIONAL_POLICIES:
        raise InvalidValue("scheduler.policy", config.scheduler.policy,
                           describe_choices(POLICIES | OPTIONAL_POLICIES) + ", or package.module:ClassName")
    if config.scheduler.reward not in REWARDS:
        raise InvalidValue("scheduler.reward", config.scheduler.reward, describe_choices(REWARDS))
