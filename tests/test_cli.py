"""The click command line: config handling, data report, train / resume / eval round trip."""

import json

import yaml
from click.testing import CliRunner

from gsrl.cli import main
from tests.conftest import TINY_OVERRIDES


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_show_config_applies_overrides_in_order():
    result = invoke("show-config", "-c", "configs/gsmeta/tox21-1shot.yaml", "-o", "meta.inner_lr=0.1",
                    "-o", "scheduler.policy=uniform")
    assert result.exit_code == 0
    resolved = yaml.safe_load(result.output)
    assert resolved["data"]["dataset"] == "tox21" and resolved["episode"]["shots"] == 1
    assert resolved["meta"]["inner_lr"] == 0.1 and resolved["scheduler"]["policy"] == "uniform"


def test_unknown_config_key_is_rejected_with_its_name(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("meta:\n  inner_lr: 0.1\n  innr_steps: 2\n")
    result = CliRunner().invoke(main, ["show-config", "-c", str(bad)])
    assert result.exit_code != 0
    assert "meta.innr_steps" in result.output and str(bad) in result.output
    result = CliRunner().invoke(main, ["train", "-o", "run.iteratons=3"])
    assert result.exit_code != 0 and "run.iteratons" in result.output


def test_data_report_counts_invalid_smiles(data_root):
    result = invoke("data", "report", "tox21", "--root", str(data_root))
    assert result.exit_code == 0
    assert "7831" in result.output and "7823" in result.output and "[AlH3]" in result.output


def test_train_then_eval(data_root, cache_dir, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [a for o in TINY_OVERRIDES for a in ("-o", o)]
    result = invoke("train", "--run-dir", str(run_dir), "-o", f"data.root={data_root}",
                    "-o", f"data.cache_dir={cache_dir}", *overrides)
    assert result.exit_code == 0, result.output
    assert "paper protocol" in result.output and "honest protocol" in result.output
    events = sorted((run_dir / "tensorboard").iterdir())
    again = invoke("train", "--resume", str(run_dir))  # a finished run: reported, not run again
    saved = json.loads((run_dir / "results.json").read_text())
    assert again.exit_code == 0 and "had already finished" in again.output
    assert f"{100 * saved['protocols']['honest']['auc_mean']:.2f}" in again.output
    assert sorted((run_dir / "tensorboard").iterdir()) == events  # no second final evaluation logged
    evaluated = invoke("eval", str(run_dir), "--draws", "1", "--json", str(tmp_path / "eval.json"))
    payload = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated.exit_code == 0 and payload["protocol"] == "honest" and len(payload["per_property"]) == 6
    assert f"honest protocol: ROC-AUC {100 * payload['auc_mean']:.2f} ± {100 * payload['auc_std']:.2f}" \
        in evaluated.output
    assert all(f"  {name}: {100 * sum(aucs) / len(aucs):.2f}" in evaluated.output
               for name, aucs in payload["per_property"].items())


def test_missing_dataset_file_is_a_one_line_error(data_root):
    result = CliRunner().invoke(main, ["data", "report", "pcba", "--root", str(data_root)])
    assert result.exit_code != 0 and "pcba.csv.gz" in result.output and "Traceback" not in result.output
