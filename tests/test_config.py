"""Run configuration: published defaults, YAML layering, overrides, type checks and the shipped files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from gsrl.config import Config, ConfigError, SchedulerConfig, config_from_dict, load_config, parse_override
from gsrl.data.datasets import FEWSHOT_DATASETS

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GSMETA_FILES = sorted((CONFIGS / "gsmeta").glob("*.yaml"))
ALL_FILES = sorted(CONFIGS.rglob("*.yaml"))


def write(path: Path, content: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


# --------------------------------------------------------------------------- defaults


def test_defaults_are_gsmeta_published_values() -> None:
    c = Config()
    assert c.meta.inner_lr == 0.5
    assert c.meta.outer_lr == 1e-3
    assert c.meta.weight_decay == 5e-5
    assert c.meta.contrastive_weight == 0.05
    assert c.meta.contrastive_temperature == 0.08
    assert c.meta.inner_steps == 1
    assert c.meta.adapt == ["all"]
    assert c.scheduler.policy == "gsmeta"
    assert c.scheduler.pool_size == 10
    assert c.scheduler.pairs == 5
    assert c.scheduler.lr == 5e-4
    assert c.scheduler.weight_decay == 5e-5
    assert c.scheduler.temperature == 1.0
    assert c.run.iterations == 2000
    assert c.eval.every == 100
    assert c.episode.shots == 10
    assert c.episode.train_queries == 16
    assert c.episode.train_auxiliary is None and c.episode.test_auxiliary is None
    assert (c.encoder.conv, c.encoder.num_layers, c.encoder.emb_dim) == ("gin", 5, 300)
    assert c.relation.top_k is None and c.relation_top_k == 9


def test_load_without_file_equals_dataclass_defaults() -> None:
    assert load_config(None) == Config()


def test_defaults_yaml_spells_out_the_dataclass_defaults() -> None:
    """configs/defaults.yaml repeats the schema's defaults; loading it changes nothing."""
    assert load_config(CONFIGS / "defaults.yaml") == Config()


def test_default_mutable_fields_are_not_shared() -> None:
    a, b = Config(), Config()
    a.meta.adapt.append("encoder")
    a.scheduler.options["x"] = 1
    assert b.meta.adapt == ["all"] and b.scheduler.options == {}


# --------------------------------------------------------------------------- unknown keys


def test_unknown_yaml_key_names_dotted_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path / "typo.yaml", {"meta": {"inner_lrr": 0.1}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "'meta.inner_lrr'" in message
    assert str(path.resolve()) in message


def test_unknown_top_level_section_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "typo.yaml", {"metaa": {"inner_lr": 0.1}})
    with pytest.raises(ConfigError, match=r"unknown config key 'metaa'") as info:
        load_config(path)
    assert str(path.resolve()) in str(info.value)


def test_unknown_key_in_base_file_names_the_base_file(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", {"scheduler": {"pool": 3}})
    child = write(tmp_path / "child.yaml", {"base": "base.yaml", "episode": {"shots": 2}})
    with pytest.raises(ConfigError) as info:
        load_config(child)
    message = str(info.value)
    assert "'scheduler.pool'" in message
    assert str(base.resolve()) in message
    assert str(child.resolve()) not in message


def test_unknown_override_key_is_rejected_and_named() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, ["meta.inner_lrr=0.1"])
    message = str(info.value)
    assert "'meta.inner_lrr'" in message
    assert "meta.inner_lrr=0.1" in message  # the override text is the source


def test_section_given_a_scalar_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'meta' must be a mapping"):
        load_config(None, ["meta=3"])


def test_override_without_equals_sign_is_rejected() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["meta.inner_lr"])


def test_parse_override_nests_and_parses_yaml_values() -> None:
    assert parse_override("meta.inner_lr=0.25") == {"meta": {"inner_lr": 0.25}}
    assert parse_override("meta.adapt=[encoder, classifier]") == {"meta": {"adapt": ["encoder", "classifier"]}}
    assert parse_override("relation.top_k=null") == {"relation": {"top_k": None}}
    assert parse_override("relation.top_k=") == {"relation": {"top_k": None}}
    assert parse_override("name=a=b") == {"name": "a=b"}  # only the first '=' splits


# --------------------------------------------------------------------------- inheritance and precedence


def test_base_inheritance_and_precedence(tmp_path: Path) -> None:
    """defaults < base < file < overrides, key by key; `base:` is relative to the file naming it."""
    write(tmp_path / "common" / "base.yaml", {
        "name": "from-base",
        "meta": {"inner_lr": 0.2, "outer_lr": 0.01},
        "episode": {"shots": 5, "train_queries": 8},
        "scheduler": {"pairs": 3},
    })
    child = write(tmp_path / "runs" / "child.yaml", {
        "base": "../common/base.yaml",
        "name": "from-child",
        "meta": {"inner_lr": 0.3},
        "episode": {"shots": 7},
    })
    config = load_config(child, ["episode.shots=8", "scheduler.pool_size=4"])
    assert config.name == "from-child"  # file beats base
    assert config.meta.inner_lr == 0.3  # file beats base
    assert config.meta.outer_lr == 0.01  # base beats defaults, file silent
    assert config.episode.shots == 8  # override beats file
    assert config.episode.train_queries == 8  # from base
    assert config.scheduler.pairs == 3  # from base
    assert config.scheduler.pool_size == 4  # override beats defaults
    assert config.meta.weight_decay == 5e-5  # untouched default
    assert config.meta.contrastive_weight == 0.05


def test_two_level_base_chain(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", {"episode": {"shots": 3, "train_queries": 6}, "run": {"seed": 11}})
    write(tmp_path / "b.yaml", {"base": "a.yaml", "episode": {"shots": 4}})
    c = write(tmp_path / "c.yaml", {"base": "b.yaml", "run": {"seed": 12}})
    config = load_config(c)
    assert (config.episode.shots, config.episode.train_queries, config.run.seed) == (4, 6, 12)


def test_later_overrides_win() -> None:
    config = load_config(None, ["run.seed=1", "run.seed=2"])
    assert config.run.seed == 2


def test_nested_mapping_updates_only_named_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "x.yaml", {"scheduler": {"options": {"decay": 0.5}}})
    config = load_config(path)
    assert config.scheduler.options == {"decay": 0.5}
    assert config.scheduler.pairs == 5 and config.scheduler.policy == "gsmeta"


def test_circular_base_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", {"base": "b.yaml"})
    write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "a.yaml")


def test_missing_file_and_missing_base_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    child = write(tmp_path / "child.yaml", {"base": "absent-base.yaml"})
    with pytest.raises(ConfigError, match="absent-base.yaml"):
        load_config(child)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == Config()


# --------------------------------------------------------------------------- types


def test_string_for_int_names_the_key_in_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", {"episode": {"shots": "ten"}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "'episode.shots'" in message and "integer" in message
    assert str(path.resolve()) in message


@pytest.mark.parametrize("override, key", [
    ("episode.shots=abc", "episode.shots"),
    ("episode.shots=2.5", "episode.shots"),  # a float is not an int
    ("episode.shots=true", "episode.shots"),  # nor is a bool
    ("meta.inner_lr=fast", "meta.inner_lr"),
    ("meta.inner_lr=true", "meta.inner_lr"),
    ("meta.first_order=1", "meta.first_order"),
    ("encoder.conv=3", "encoder.conv"),
    ("meta.adapt=encoder", "meta.adapt"),  # a list is expected
    ("meta.adapt=[encoder, 3]", "meta.adapt[1]"),
    ("scheduler.options=[1]", "scheduler.options"),
    ("relation.top_k=many", "relation.top_k"),  # Optional[int] still checks the int
])
def test_type_errors_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert f"'{key}'" in str(info.value)


def test_int_is_accepted_for_float() -> None:
    config = load_config(None, ["meta.inner_lr=1", "scheduler.temperature=2"])
    assert config.meta.inner_lr == 1.0 and type(config.meta.inner_lr) is float
    assert config.scheduler.temperature == 2.0 and type(config.scheduler.temperature) is float


def test_int_is_accepted_for_float_in_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "x.yaml", {"meta": {"outer_lr": 1, "grad_clip": 5}})
    config = load_config(path)
    assert type(config.meta.outer_lr) is float and config.meta.outer_lr == 1.0
    assert type(config.meta.grad_clip) is float and config.meta.grad_clip == 5.0


def test_optional_fields_take_null_and_values() -> None:
    config = load_config(None, ["relation.top_k=3", "encoder.pretrained=/models/x.pth", "run.threads=2"])
    assert (config.relation.top_k, config.encoder.pretrained, config.run.threads) == (3, "/models/x.pth", 2)
    config = load_config(None, ["relation.top_k=null", "encoder.pretrained=null"])
    assert config.relation.top_k is None and config.encoder.pretrained is None


def test_float_override_with_decimal_point_exponent() -> None:
    assert load_config(None, ["meta.outer_lr=1.0e-4"]).meta.outer_lr == pytest.approx(1e-4)


def test_float_override_in_plain_scientific_notation() -> None:
    assert load_config(None, ["meta.outer_lr=1e-4"]).meta.outer_lr == pytest.approx(1e-4)


@pytest.mark.parametrize("override, fragment", [
    ("episode.shots=0", "episode.shots"),
    ("episode.train_queries=1", "episode.train_queries"),
    ("scheduler.pairs=0", "scheduler.pairs"),
    ("scheduler.pool_size=0", "scheduler.pool_size"),
    ("run.device=tpu", "run.device"),
    ("run.backend=mpi", "run.backend"),
    ("eval.final_draws=0", "eval.final_draws"),
    ("meta.adapt=[encoder, decoder]", "decoder"),
])
def test_cross_field_validation(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_config(None, [override])


def test_config_from_dict_checks_keys_and_types() -> None:
    config = config_from_dict({"episode": {"shots": 3}, "meta": {"inner_lr": 1}})
    assert config.episode.shots == 3 and config.meta.inner_lr == 1.0
    with pytest.raises(ConfigError, match="'episode.shot'"):
        config_from_dict({"episode": {"shot": 3}})


# --------------------------------------------------------------------------- relation_top_k


@pytest.mark.parametrize("shots, expected", [(1, 1), (2, 1), (3, 2), (5, 4), (10, 9)])
def test_relation_top_k_defaults_to_shots_minus_one_at_least_one(shots: int, expected: int) -> None:
    assert load_config(None, [f"episode.shots={shots}"]).relation_top_k == expected


def test_relation_top_k_explicit_value_wins() -> None:
    assert load_config(None, ["episode.shots=10", "relation.top_k=4"]).relation_top_k == 4
    assert load_config(None, ["episode.shots=1", "relation.top_k=3"]).relation_top_k == 3


# --------------------------------------------------------------------------- shipped files


def test_shipped_config_inventory() -> None:
    assert len(GSMETA_FILES) == 26
    stems = {p.stem for p in GSMETA_FILES}
    for dataset in FEWSHOT_DATASETS:
        assert {f"{dataset}-1shot", f"{dataset}-10shot"} <= stems
    assert (CONFIGS / "defaults.yaml").is_file()


def _schema(path: Path) -> type:
    """Each configs/ folder holds one workload's configs (gae/: sweep*.yaml, molecules*.yaml, link jobs)."""
    from gsrl.compare.config import CompareConfig
    from gsrl.finetune.config import FinetuneConfig
    from gsrl.gae.link.config import LinkPredictionConfig, LinkSweepConfig
    from gsrl.gae.molecular.config import MolecularVGAEConfig
    from gsrl.pretraining.config import PretrainConfig

    if path.parent.name == "gae":
        kinds = {"sweep": LinkSweepConfig, "molecules": MolecularVGAEConfig}
        return kinds.get(path.stem.split("-")[0], LinkPredictionConfig)
    kinds = {"pretrain": PretrainConfig, "finetune": FinetuneConfig, "compare": CompareConfig}
    return kinds.get(path.parent.name, Config)


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_yaml_loads(path: Path) -> None:
    schema = _schema(path)
    assert isinstance(load_config(path, schema=schema), schema)


@pytest.mark.parametrize("path", GSMETA_FILES, ids=lambda p: p.stem)
def test_gsmeta_files_differ_from_defaults_only_in_name_dataset_and_shots(path: Path) -> None:
    dataset, shots_text = path.stem.rsplit("-", 1)
    shots = int(shots_text.removesuffix("shot"))
    config = load_config(path)
    assert config.name == f"gsmeta-{path.stem}"
    assert config.data.dataset == dataset
    assert config.episode.shots == shots
    expected = Config()
    expected.name, expected.data.dataset, expected.episode.shots = config.name, dataset, shots
    assert config == expected
    assert config.run.iterations == 2000 and config.eval.every == 100


@pytest.mark.parametrize("path", GSMETA_FILES, ids=lambda p: p.stem)
def test_gsmeta_relation_top_k(path: Path) -> None:
    config = load_config(path)
    assert config.relation_top_k == (1 if config.episode.shots == 1 else 9)


# --------------------------------------------------------------------------- serialisation


def test_to_yaml_round_trips_through_load(tmp_path: Path) -> None:
    config = load_config(None, [
        "name=round-trip", "data.dataset=tox21", "data.root=/data", "encoder.pretrained=/m.pth",
        "relation.top_k=3", "relation.mol_mol_edges=false", "episode.shots=5", "episode.train_auxiliary=4",
        "meta.adapt=[encoder, classifier]", "meta.inner_lr=0.125", "meta.first_order=true",
        "scheduler.policy=ucb", "scheduler.options={exploration: 0.5, decay: 0.2}", "scheduler.temperature=2",
        "run.threads=3", "run.device=cpu", "eval.progress=false",
    ])
    path = tmp_path / "resolved.yaml"
    path.write_text(config.to_yaml())
    reloaded = load_config(path)
    assert reloaded == config
    assert reloaded.to_yaml() == config.to_yaml()
    assert yaml.safe_load(config.to_yaml()) == dataclasses.asdict(config)


def test_default_to_yaml_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "defaults.yaml"
    path.write_text(Config().to_yaml())
    assert load_config(path) == Config()


def test_scheduler_config_defaults_match_section() -> None:
    assert Config().scheduler == SchedulerConfig()
    assert SchedulerConfig().temperature_step == 500
