"""`gsrl compare`: per-algorithm configs, the table, and a tiny comparison end to end on Ray."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gsrl.checkpoint import identity_digest
from gsrl.compare.config import CompareConfig
from gsrl.compare.table import format_markdown, run_record, summarize
from gsrl.config import ConfigError, load_config
from gsrl.jobs.compare import run_directory
from gsrl.jobs.grid import PACK_FILE, RunPack
from gsrl.stats import co_selection_lift
from tests.conftest import TINY_OVERRIDES

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def _changed_keys(config: dict, reference: dict) -> dict[str, object]:
    """`section.key` -> value for every key of a run config that differs from the reference run config."""
    return {f"{section}.{key}": value for section, values in config.items() if isinstance(values, dict)
            for key, value in values.items() if reference[section][key] != value}


@pytest.mark.parametrize("dataset", ["sider", "tox21"])
def test_shipped_comparisons_differ_from_gsmeta_only_in_each_algorithm_s_keys(dataset):
    cells = {}
    for suffix in ("", "-ablations", "-pretrained"):
        path = CONFIGS / "compare" / f"{dataset}-10shot{suffix}.yaml"
        compare = load_config(path, schema=CompareConfig)
        run_config = compare.resolved_run_config(path)
        assert run_config == (CONFIGS / "gsmeta" / f"{dataset}-10shot.yaml").resolve()
        for column in compare.algorithms:
            config = compare.cell_config(column, 1, run_config).to_dict()
            assert cells.setdefault(column, config) == config  # a column shared by both tables is one run
    assert len(cells) == 9
    reference = cells["gsmeta"]
    assert reference["run"]["seed"] == 1 and reference["data"]["dataset"] == dataset
    assert reference["episode"]["shots"] == 10 and reference["scheduler"]["pairs"] == 5

    def differences(column: str) -> dict[str, object]:
        return _changed_keys(cells[column], reference)

    assert differences("gsmeta-no-scheduler") == {"scheduler.policy": "uniform"}
    assert differences("gsmeta-no-contrastive") == {"meta.contrastive_weight": 0.0}
    assert differences("gsmeta-no-m2m") == {"relation.mol_mol_edges": False}
    baseline = {"scheduler.policy": "uniform", "meta.contrastive_weight": 0.0}
    assert differences("maml") == {"meta.algorithm": "maml", **baseline}
    assert differences("fomaml") == {"meta.algorithm": "maml", "meta.first_order": True, **baseline}
    assert differences("reptile") == {"meta.algorithm": "reptile", "meta.inner_steps": 5, "meta.inner_lr": 0.05,
                                      **baseline}
    assert differences("protonet") == {"meta.algorithm": "protonet", **baseline}
    assert differences("pre-gsmeta") == {"encoder.pretrained": "{shipped}/gin_attribute_masking_moses.pth"}


def test_run_directory_follows_the_pretrained_encoder_file_not_only_its_name(tmp_path):
    checkpoint = tmp_path / "encoder.pth"
    checkpoint.write_bytes(b"first weights")
    pretrained = load_config(None, [f"encoder.pretrained='{checkpoint}'"])
    where = run_directory(tmp_path, pretrained)
    assert run_directory(tmp_path, pretrained) == where
    checkpoint.write_bytes(b"second weights")  # replaced under the same name: a different run
    assert run_directory(tmp_path, pretrained) != where
    scratch = load_config(None, [])  # no encoder file: the config alone names the run, as before
    identity = scratch.to_dict()
    del identity["run"]["precision"]  # fp32 is left out (test_a_bf16_run_has_its_own_directory...)
    assert run_directory(tmp_path, scratch).name == f"{scratch.name}-{identity_digest(identity)}"


def test_a_bad_algorithm_override_names_its_column():
    compare = load_config(None, ["algorithms={maml: [meta.algorithm=maml, meta.inner_lrr=0.1]}"],
                          schema=CompareConfig)
    with pytest.raises(ConfigError, match=r"algorithms.maml: .*unknown config key 'meta.inner_lrr'"):
        compare.cell_config("maml", 0, CONFIGS / "defaults.yaml")
    with pytest.raises(ConfigError, match="algorithms.maml must be a list"):
        load_config(None, ["algorithms={maml: meta.algorithm=maml}"], schema=CompareConfig)


def test_table_averages_seeds_and_places_the_published_figure():
    records = [{"column": "maml", "algorithm": "maml", "seed": s, "dataset": "sider", "paper_auc": auc,
                "honest_auc": auc - 0.02, "wall_seconds": 120.0 * (s + 1), "meta_iterations_per_s": 0.5}
               for s, auc in enumerate([0.70, 0.74])]
    variant = {**records[0], "column": "fomaml"}  # a MAML variant is not set beside MAML's figure
    summary = summarize(records + [variant], ["maml", "protonet", "fomaml"])
    assert summary["cells"]["fomaml"]["published"] is None
    maml = summary["cells"]["maml"]
    assert maml["paper"]["mean"] == pytest.approx(0.72) and maml["paper"]["std"] == pytest.approx(0.02)
    assert maml["published"] == (70.43, "MAML") and maml["wall_seconds"] == pytest.approx(180.0)
    table = format_markdown(summary, "t", "n")
    assert "| maml | 72.00 ± 2.00 (n=2) | 70.00 ± 2.00 (n=2) | 70.43 (MAML) | 3.0 min | 0.500 |" in table
    assert "| protonet | — | — | — | — | — |" in table


def test_paired_differences_from_the_reference_column_with_t_intervals():
    def record(column: str, seed: int, paper: float, honest: float) -> dict:
        return {"column": column, "algorithm": "gsmeta", "seed": seed, "dataset": "sider", "paper_auc": paper,
                "honest_auc": honest, "wall_seconds": 60.0, "meta_iterations_per_s": 1.0}

    uniform = [record("uniform", s, 0.70 + 0.05 * s, 0.60 + 0.05 * s) for s in range(3)]
    # seed 3 of the policy has no uniform partner: left out of the pairs
    policy = [record("ucb", s, 0.70 + 0.05 * s + d, 0.60 + 0.05 * s)
              for s, d in ((0, 0.01), (1, 0.02), (2, 0.03), (3, 0.5))]
    summary = summarize(uniform + policy, ["uniform", "ucb"], reference="uniform")
    paper = summary["cells"]["ucb"]["versus_reference"]["paper"]
    assert paper["pairs"] == 3 and paper["differences"] == pytest.approx([0.01, 0.02, 0.03])
    half = 4.302652729911275 * 0.01 / 3 ** 0.5  # t(0.975, 2) x standard error
    assert paper["mean"] == pytest.approx(0.02) and paper["ci"] == pytest.approx([0.02 - half, 0.02 + half])
    honest = summary["cells"]["ucb"]["versus_reference"]["honest"]
    assert honest["mean"] == pytest.approx(0.0) and honest["ci"] == pytest.approx([0.0, 0.0])
    assert summary["cells"]["uniform"]["versus_reference"]["paper"]["mean"] == 0.0
    table = format_markdown(summary, "t", "n")
    assert "## Paired by seed: difference from uniform" in table
    interval = f"[{100 * (0.02 - half):+.2f}, {100 * (0.02 + half):+.2f}]"
    assert f"| ucb | +2.00 {interval} (n=3) | +0.00 [+0.00, +0.00] (n=3) | — | — | — |" in table
    assert "Paired by seed" not in format_markdown(summarize(uniform, ["uniform"]), "t", "n")


def test_a_run_record_says_what_its_policy_selected():
    selection = {"meta_batches": 10, "properties": ["a", "b", "c"], "selected": [4, 9, 7],
                 "co_selection": [[4, 3, 1], [3, 9, 6], [1, 6, 7]],
                 "entropy_by_tenth": [1.0, 0.5], "entropy_max_by_tenth": [2.0, 2.0]}
    results = {"algorithm": "gsmeta", "seed": 0, "dataset": "sider", "iterations": 10, "selection": selection,
               "protocols": {"paper": {"auc_mean": 0.7, "iteration": 10}, "honest": {"auc_mean": 0.6}},
               "timing": {"wall_seconds": 1.0, "meta_iteration_seconds": 0.5, "meta_iterations_per_s": 20.0}}
    record = run_record("gsmeta", results)
    assert (record["entropy_first"], record["entropy_last"]) == (0.5, 0.25)
    assert (record["most_selected"], record["most_selected_share"]) == ("b", 0.9)
    older = run_record("gsmeta", {**results, "selection": None})  # recorded before selections were kept
    assert older["entropy_first"] is None and older["most_selected"] is None
    summary = summarize([record, {**record, "seed": 1, "most_selected": "c", "most_selected_share": 0.7}, older],
                        ["gsmeta"])
    # b and c tie at one run each: the larger share wins
    assert summary["cells"]["gsmeta"]["most_selected"] == {"property": "b", "runs": 1, "share": 0.9}
    assert summary["cells"]["gsmeta"]["entropy_first"] == pytest.approx(0.5)


def test_co_selection_lift_is_one_for_chance_pairings_and_above_one_for_deliberate_ones():
    from itertools import combinations

    def counts(meta_batches: list[tuple[int, ...]], n: int) -> np.ndarray:
        together = np.zeros((n, n), dtype=np.int64)
        for chosen in meta_batches:
            for a in chosen:
                for b in chosen:
                    together[a, b] += 1
        return together

    every_triple = list(combinations(range(4), 3))  # each 3-subset of 4 once: the uniform expectation itself
    lift = co_selection_lift(counts(every_triple, 4), len(every_triple))
    off_diagonal = ~np.eye(4, dtype=bool)
    assert np.allclose(lift[off_diagonal], 1.0) and np.isnan(np.diag(lift)).all()
    # always {0, 1} or {2, 3}: each property half the time, as under chance, but never across the two pairs
    paired = co_selection_lift(counts([(0, 1), (2, 3), (0, 1), (2, 3)], 4), 4)
    assert paired[0, 1] == pytest.approx(3.0) and paired[2, 3] == pytest.approx(3.0)  # 2 seen, 2/3 expected
    assert paired[0, 2] == 0.0 and paired[1, 3] == 0.0
    never = co_selection_lift(counts([(0, 1), (1, 2)], 4), 2)  # property 3 never selected
    assert np.isnan(never[3]).all() and never[0, 1] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="two properties per meta-batch"):
        co_selection_lift(counts([(0,), (1,)], 3), 2)


@pytest.mark.parametrize("dataset", ["sider", "tox21"])
def test_the_policy_study_pairs_every_column_on_the_reduced_network(dataset):
    """Every column differs from uniform only in the scheduler policy (ablations: in its own keys), and
    both tables share their GS-Meta and uniform runs."""
    cells = {}
    for suffix in ("policies", "policies-ablations"):
        path = CONFIGS / "compare" / f"{dataset}-10shot-{suffix}.yaml"
        compare = load_config(path, schema=CompareConfig)
        assert compare.seeds == [0, 1, 2, 3, 4] and compare.reference in compare.algorithms
        for column in compare.algorithms:
            config = compare.cell_config(column, 3, compare.resolved_run_config(path)).to_dict()
            assert cells.setdefault(column, config) == config
    reference = cells["uniform"]
    assert reference["encoder"]["emb_dim"] == 128 and reference["run"]["iterations"] == 250
    for column, config in cells.items():
        changed = set(_changed_keys(config, reference))
        expected = {"no-contrastive": {"scheduler.policy", "meta.contrastive_weight"},
                    "no-m2m": {"scheduler.policy", "relation.mol_mol_edges"}}.get(column, {"scheduler.policy"})
        assert changed == (set() if column == "uniform" else expected), column
    assert {c["scheduler"]["policy"] for c in cells.values()} == {
        "gsmeta", "uniform", "hardest", "ucb", "learning-progress", "thompson", "sb3-ppo"}


@pytest.mark.parametrize("dataset", ["sider", "tox21"])
def test_the_published_size_policy_study_reuses_gsmeta_runs_and_takes_the_best_reduced_policy(dataset):
    """Its gsmeta column is the algorithm comparison's gsmeta runs, and its third column is the policy with
    the highest mean honest paired difference from uniform in the finished reduced study."""
    path = CONFIGS / "compare" / f"{dataset}-10shot-policies-published.yaml"
    published = load_config(path, schema=CompareConfig)
    algorithms_path = CONFIGS / "compare" / f"{dataset}-10shot.yaml"
    algorithms = load_config(algorithms_path, schema=CompareConfig)
    assert published.seeds == algorithms.seeds and published.reference == "uniform"
    cells = {column: published.cell_config(column, 2, published.resolved_run_config(path)).to_dict()
             for column in published.algorithms}
    shared = algorithms.cell_config("gsmeta", 2, algorithms.resolved_run_config(algorithms_path))
    assert cells["gsmeta"] == shared.to_dict()
    assert cells["uniform"]["encoder"]["emb_dim"] == 300 and cells["uniform"]["scheduler"]["pool_size"] == 10
    for column, config in cells.items():
        changed = set(_changed_keys(config, cells["uniform"]))
        assert changed == (set() if column == "uniform" else {"scheduler.policy"}), column

    reduced = json.loads((ROOT / "benchmarks" / "results" / "compare" / f"policies-{dataset}-10shot" /
                          "results.json").read_text())["summary"]
    honest = {column: cell["versus_reference"]["honest"] for column, cell in reduced["cells"].items()
              if column not in ("gsmeta", "uniform")}
    assert all(difference["pairs"] == 5 for difference in honest.values())
    best = max(honest, key=lambda column: honest[column]["mean"])
    assert list(published.algorithms) == ["gsmeta", "uniform", best]


def test_gsrl_compare_runs_algorithms_by_seeds_on_ray_and_reuses_finished_runs(tmp_path, data_root, cache_dir):
    ray = pytest.importorskip("ray")
    from click.testing import CliRunner

    from gsrl.cli import main

    schedule = [f"data.root={data_root}", f"data.cache_dir={cache_dir}", *TINY_OVERRIDES, "run.iterations=2",
                "eval.every=1", "run.threads=1"]
    overrides = [f"schedule=[{', '.join(schedule)}]", "seeds=[0, 1]", f"run.output_dir={tmp_path}", "name=tiny",
                 "algorithms={maml: [meta.algorithm=maml], protonet: [meta.algorithm=protonet]}"]
    arguments = ["compare", "-c", str(CONFIGS / "compare" / "sider-10shot.yaml")]
    arguments += [x for o in overrides for x in ("-o", o)]
    # A second comparison that asks for one of the same columns finds its finished runs.
    maml_only = arguments + ["-o", "name=tiny-maml", "-o", "algorithms={maml: [meta.algorithm=maml]}"]
    try:
        before = CliRunner().invoke(main, arguments + ["--finished-only"])  # nothing has run: nothing starts
        assert before.exit_code == 0, before.output + repr(before.exception)
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
        assert "4 of 4 runs have not finished yet" in before.output
        assert len(json.loads((tmp_path / "tiny" / "results.json").read_text())["unfinished"]) == 4
        first = CliRunner().invoke(main, arguments)
        assert first.exit_code == 0, first.output + repr(first.exception)
        saved = json.loads((tmp_path / "tiny" / "results.json").read_text())
        again = CliRunner().invoke(main, maml_only)
        assert again.exit_code == 0, again.output + repr(again.exception)
        report = CliRunner().invoke(main, arguments + ["--finished-only"])  # every run read back
        assert report.exit_code == 0 and "not finished" not in report.output
    finally:
        ray.shutdown()
    assert not saved["failures"]
    assert {(r["column"], r["algorithm"], r["seed"]) for r in saved["runs"]} == {
        ("maml", "maml", 0), ("maml", "maml", 1), ("protonet", "protonet", 0), ("protonet", "protonet", 1)}
    for record in saved["runs"]:
        (run_dir,) = (tmp_path / "runs").glob(f"{record['column']}-seed{record['seed']}-*")
        run = json.loads((run_dir / "results.json").read_text())
        assert record["paper_auc"] == max(c["auc_mean"] for c in run["curve"]) and len(run["curve"]) == 2
        assert record["iterations"] == 2 and record["meta_iterations_per_s"] > 0
    assert "| maml |" in first.output and "70.43 (MAML)" in first.output and "64.54 (ProtoNet)" in first.output
    reread = json.loads((tmp_path / "tiny-maml" / "results.json").read_text())["runs"]
    assert reread == [r for r in saved["runs"] if r["column"] == "maml"]
    assert len(list((tmp_path / "runs").iterdir())) == 4


@pytest.mark.parametrize("name", ["sider-10shot", "tox21-10shot", "sider-10shot-pretrained"])
def test_committed_comparisons_read_every_finished_run_back_from_the_pack(name):
    """The repository keeps grid runs packed (runs.packed.jsonl), not as folders: every cell of a committed
    comparison still finds its run, and the run is the one its table was made from."""
    path = CONFIGS / "compare" / f"{name}.yaml"
    compare = load_config(path, schema=CompareConfig)
    run_config, output_dir = compare.resolved_run_config(path), ROOT / compare.run.output_dir
    pack = RunPack(output_dir / "runs")
    table_runs = json.loads((output_dir / compare.name / "results.json").read_text())["runs"]
    for column in compare.algorithms:
        for seed in compare.seeds:
            run_dir = run_directory(output_dir, compare.cell_config(column, seed, run_config))
            results = pack.results(run_dir)
            assert results is not None, f"{column} seed {seed}: {run_dir.name} is neither packed nor on disk"
            record = run_record(column, results)
            assert any(all(row[k] == record[k] for k in ("column", "seed", "paper_auc", "honest_auc"))
                       for row in table_runs)


def test_run_pack_keeps_finished_runs_and_prefers_a_run_folder(tmp_path):
    runs = tmp_path / "runs"
    for name, auc in (("a-seed0-1", 0.5), ("b-seed0-2", 0.75)):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.yaml").write_text(f"name: {name}\n")
        (runs / name / "results.json").write_text(json.dumps({"auc": auc}))
    (runs / "unfinished").mkdir()
    (runs / "unfinished" / "config.yaml").write_text("name: unfinished\n")
    assert RunPack(runs).pack() == tmp_path / PACK_FILE
    for name in ("a-seed0-1", "b-seed0-2"):
        (runs / name / "results.json").unlink()
    pack = RunPack(runs)
    assert sorted(pack.entries) == ["a-seed0-1", "b-seed0-2"]
    assert pack.entries["a-seed0-1"]["config"] == {"name": "a-seed0-1"}
    assert pack.results(runs / "b-seed0-2") == {"auc": 0.75} and pack.results(runs / "unfinished") is None
    (runs / "b-seed0-2" / "results.json").write_text(json.dumps({"auc": 0.9}))
    assert pack.results(runs / "b-seed0-2") == {"auc": 0.9}  # a folder holding its result wins
    (tmp_path / PACK_FILE).write_text('{"run": "x"}\nnot json\n')
    with pytest.raises(ValueError, match=r"runs.packed.jsonl, line 2: not a packed run"):
        RunPack(runs)


def test_a_bf16_run_has_its_own_directory_and_fp32_runs_keep_theirs(tmp_path):
    """run.precision changes a run's numbers, so bf16 names a new directory; fp32, what every run had before the
    key existed, leaves the identity as it was (the committed comparisons above still find their runs)."""
    fp32 = load_config(None, ["data.dataset=sider"])
    bf16 = load_config(None, ["data.dataset=sider", "run.precision=bf16"])
    assert run_directory(tmp_path, fp32) != run_directory(tmp_path, bf16)
