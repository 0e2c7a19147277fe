"""Every key of every job's config refuses a value of the wrong type in one line naming the source, the key,
the value and what the key takes; the CLI prints that line alone and exits non-zero."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest
from click.testing import CliRunner

from gsrl.cli import main
from gsrl.compare.config import CompareConfig
from gsrl.config import Config, ConfigError, load_config
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
    ["train", "-o", "scheduler.pairs=0"],
    ["train", "-o", "run.iteratons=3"],
    ["pretrain", "-c", "configs/pretrain/attribute_masking.yaml", "-o", "run.workers=0"],
    ["finetune", "-c", "configs/finetune/smoke.yaml", "-o", "datasets=[nope]"],
    ["gae", "-c", "configs/gae/cora-gae.yaml", "-o", "model=vae"],
    ["show-config", "-o", "meta.algorithm=mamal"],
])
def test_the_cli_prints_a_bad_value_as_one_error_line(arguments: list[str]) -> None:
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
