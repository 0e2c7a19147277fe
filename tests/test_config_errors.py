"""Every key of every job's config refuses a bad value (wrong type, out of range, unknown choice) in one
line naming the source, the key, the value and what the key takes; the CLI prints that line alone, exits
non-zero and writes nothing.

Every number key declares its range and every word key its choices on its type (gsrl.domains), or is a
registry name checked by its section, or free text (names, paths, addresses); the walks below hold the
schemas to that, and property-based draws feed each range key values just outside it and far away.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from gsrl.cli import main
from gsrl.compare.config import CompareConfig
from gsrl.config import Config, ConfigError, load_config
from gsrl.domains import OneOf, Range
from gsrl.finetune.config import FinetuneConfig
from gsrl.gae.link.config import LinkPredictionConfig, LinkSweepConfig
from gsrl.gae.molecular.config import MolecularVGAEConfig
from gsrl.pretraining.config import PretrainConfig

SCHEMAS = (Config, PretrainConfig, FinetuneConfig, CompareConfig, LinkPredictionConfig, LinkSweepConfig,
           MolecularVGAEConfig)

# A value of each type no key of another type accepts, as the override text and the value YAML reads from it.
WRONG = {int: ("not-a-number", "'not-a-number'"), float: ("not-a-number", "'not-a-number'"),
         bool: ("maybe", "'maybe'"), str: ("12345", "12345"), list: ("7", "7"), dict: ("7", "7")}
EXPECTS = {int: "expects an integer", float: "expects a number", bool: "expects true/false",
           str: "expects a string", list: "expects a list", dict: "expects a mapping"}


def _base_type(annotation: Any) -> type | None:
    """The type a key's value must have (None for keys that take anything)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation) or annotation
    return origin if origin in WRONG else None


def leaf_keys(schema: type, prefix: str = "") -> list[tuple[str, type]]:
    """(dotted key, type) of every setting of a schema, sections walked."""
    keys = []
    hints = typing.get_type_hints(schema)
    for field in dataclasses.fields(schema):
        annotation = hints[field.name]
        if dataclasses.is_dataclass(annotation):
            keys.extend(leaf_keys(annotation, f"{prefix}{field.name}."))
        elif (base := _base_type(annotation)) is not None:
            keys.append((f"{prefix}{field.name}", base))
    return keys


CASES = [(schema, key, base) for schema in SCHEMAS for key, base in leaf_keys(schema)]


def test_the_walk_covers_every_schema_and_the_shared_sections() -> None:
    keys = {(schema.__name__, key) for schema, key, _ in CASES}
    for schema in SCHEMAS:
        for shared in ("run.output_dir", "ray.address", "ray.worker_cpus", "ray.worker_gpus"):
            assert (schema.__name__, shared) in keys
    # A grid's data settings are its cells': the sweep's in `job`, the comparison's in its run config.
    for schema, prefix in ((Config, ""), (PretrainConfig, ""), (FinetuneConfig, ""), (LinkPredictionConfig, ""),
                           (MolecularVGAEConfig, ""), (LinkSweepConfig, "job.")):
        assert {(schema.__name__, f"{prefix}data.root"), (schema.__name__, f"{prefix}data.cache_dir")} <= keys
    assert len(CASES) > 200


@pytest.mark.parametrize(("schema", "key", "base"), CASES, ids=[f"{s.__name__}:{k}" for s, k, _ in CASES])
def test_a_wrong_type_is_one_line_naming_source_key_value_and_what_is_allowed(schema, key, base) -> None:
    text, shown = WRONG[base]
    with pytest.raises(ConfigError) as error:
        load_config(None, [f"{key}={text}"], schema=schema)
    message = str(error.value)
    assert "\n" not in message
    assert f"override '{key}={text}'" in message and f"'{key}'" in message
    assert EXPECTS[base] in message and shown in message


@pytest.mark.parametrize("arguments", [
    ["train", "-o", "run.iterations=abc"],
    ["train", "-o", "run.iterations=-5"],
    ["train", "-o", "scheduler.policy=ucbb"],
    ["train", "-o", "data.dataset=nope"],
    ["train", "-o", "data.root=/no/such/folder"],
    ["train", "-o", "encoder.pretrained=/no/such/encoder.pth"],
    ["train", "-o", "scheduler.pairs=0"],
    ["train", "-o", "run.iteratons=3"],
    ["pretrain", "-c", "configs/pretrain/attribute_masking.yaml", "-o", "run.workers=0"],
    ["finetune", "-c", "configs/finetune/smoke.yaml", "-o", "datasets=[nope]"],
    ["gae", "-c", "configs/gae/cora-gae.yaml", "-o", "model=vae"],
    ["show-config", "-o", "meta.algorithm=mamal"],
])
def test_the_cli_prints_a_bad_value_as_one_error_line(arguments: list[str], tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    output = tmp_path / "runs"
    result = CliRunner().invoke(main, arguments + (["-o", f"run.output_dir={output}"] if arguments[0] != "show-config"
                                                   else []))
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert not output.exists() or not any(output.iterdir()), "a refused start wrote a run directory"


# ---------------------------------------------------------------------------------------------------------
# Out of range and unknown choices.

# Keys whose allowed words are a registry's names, checked by their section's validate().
REGISTRY_KEYS = {"Config:meta.algorithm", "Config:scheduler.policy", "Config:scheduler.reward",
                 "PretrainConfig:strategy", "CompareConfig:reference",
                 *(f"LinkPredictionConfig:{k}" for k in ("dataset", "model", "conv", "loss")),
                 *(f"LinkSweepConfig:job.{k}" for k in ("dataset", "model", "conv", "loss"))}
# The few-shot dataset may also be a user's entry in the data root's tasks file: checked when the job reads it.
DATA_KEYS = {"data.dataset"}
FREE_TEXT = {"name", "root", "cache_dir", "output_dir", "address", "pretrained", "path", "holdout_path", "column",
             "run_config"}  # last segment of the key
# A base that the schema's own validation accepts (a comparison needs a column).
BASE = {CompareConfig: ["algorithms={gsmeta: []}"]}


def leaf_annotations(schema: type, prefix: str = "") -> list[tuple[str, Any]]:
    leaves = []
    hints = typing.get_type_hints(schema, include_extras=True)
    for field in dataclasses.fields(schema):
        annotation = hints[field.name]
        if dataclasses.is_dataclass(typing.get_origin(annotation) or annotation):
            leaves.extend(leaf_annotations(annotation, f"{prefix}{field.name}."))
        else:
            leaves.append((f"{prefix}{field.name}", annotation))
    return leaves


def domain(annotation: Any) -> tuple[type | None, Range | OneOf | None]:
    """(base type, declared domain) of a scalar key, through `X | None`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            return None, None
        annotation = args[0]
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        return base, next((e for e in extras if isinstance(e, (Range, OneOf))), None)
    return (annotation if annotation in (int, float, str, bool) else None), None


LEAVES = [(schema, key, *domain(annotation)) for schema in SCHEMAS for key, annotation in leaf_annotations(schema)]
RANGES = [(schema, key, base, d) for schema, key, base, d in LEAVES if isinstance(d, Range)]
CHOICE_KEYS = [(schema, key) for schema, key, base, d in LEAVES
               if isinstance(d, OneOf) or (base is str and f"{schema.__name__}:{key}" in REGISTRY_KEYS)]


def test_every_number_key_declares_its_range() -> None:
    bare = [f"{s.__name__}:{k}" for s, k, base, d in LEAVES if base in (int, float) and not isinstance(d, Range)]
    assert not bare, f"number keys without a declared Range: {bare}"
    assert len(RANGES) > 120


def test_every_word_key_is_a_choice_a_registry_name_or_free_text() -> None:
    for schema, key, base, d in LEAVES:
        if base is not str:
            continue
        kinds = [isinstance(d, OneOf), f"{schema.__name__}:{key}" in REGISTRY_KEYS, key in DATA_KEYS,
                 key.rsplit(".", 1)[-1] in FREE_TEXT]
        assert sum(kinds) == 1, f"{schema.__name__}:{key} is {kinds} (choice, registry, data, free text)"


@pytest.mark.parametrize(("schema", "key", "base", "declared"), RANGES,
                         ids=[f"{s.__name__}:{k}" for s, k, *_ in RANGES])
def test_defaults_lie_in_their_declared_range(schema, key, base, declared) -> None:
    value = schema()
    for part in key.split("."):
        value = getattr(value, part)
    assert value is None or declared.admits(value), f"{key} defaults to {value}, outside its range"


def outside(declared: Range, base: type) -> st.SearchStrategy:
    """Values a key with this range must refuse: just past a bound, far past it, and non-finite floats."""
    options = []
    if base is int:
        if declared.low is not None:
            options.append(st.integers(max_value=int(declared.low) - (0 if declared.open_low else 1)))
        if declared.high is not None:
            options.append(st.integers(min_value=int(declared.high) + (0 if declared.open_high else 1)))
    else:
        if declared.low is not None:
            options.append(st.floats(max_value=declared.low, exclude_max=not declared.open_low, allow_nan=False,
                                     allow_infinity=False, width=32))
        if declared.high is not None:
            options.append(st.floats(min_value=declared.high, exclude_min=not declared.open_high, allow_nan=False,
                                     allow_infinity=False, width=32))
        options.append(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
    return st.one_of(options)


def as_yaml(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[str(value)]
    return repr(value)


def refusal(schema: type, text: str) -> str:
    """The one-line message with which the override `text` (on the schema's valid base) is refused."""
    with pytest.raises(ConfigError) as error:
        load_config(None, BASE.get(schema, []) + [text], schema=schema)
    message = str(error.value)
    assert "\n" not in message and f"override '{text}'" in message
    return message


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_out_of_range_values_are_refused_in_one_line(data) -> None:
    schema, key, base, declared = data.draw(st.sampled_from(RANGES), label="key")
    value = data.draw(outside(declared, base), label="value")
    message = refusal(schema, f"{key}={as_yaml(value)}")
    assert f"key '{key}' takes" in message
    assert declared.describe("x").split(" ", 1)[1] in message  # the bounds, as allowed


@pytest.mark.parametrize(("schema", "key"), CHOICE_KEYS, ids=[f"{s.__name__}:{k}" for s, k in CHOICE_KEYS])
def test_an_unknown_choice_is_refused_naming_the_choices(schema, key) -> None:
    message = refusal(schema, f"{key}=no-such-choice")
    assert f"key '{key}' takes one of" in message and "'no-such-choice'" in message


def test_a_bad_value_in_a_file_names_the_file(tmp_path) -> None:
    quickstart = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"
    config = tmp_path / "bad.yaml"
    config.write_text(f"base: {quickstart}\nscheduler: {{pairs: 0}}\n")
    with pytest.raises(ConfigError) as error:  # refused as the file is read, before any later layer
        load_config(config, ["scheduler.pairs=2"])
    assert str(error.value) == f"{config}: key 'scheduler.pairs' takes an integer >= 1, got 0"
    config.write_text(f"base: {quickstart}\nscheduler: {{reward: loss}}\n")
    with pytest.raises(ConfigError) as error:  # a registry name, checked once every layer is in
        load_config(config)
    assert str(error.value).startswith(f"{config}: key 'scheduler.reward' takes one of contrastive, query_loss")
    with pytest.raises(ConfigError) as error:
        load_config(config, ["scheduler.reward=loss"])
    assert str(error.value).startswith("override 'scheduler.reward=loss': key 'scheduler.reward' takes one of")
