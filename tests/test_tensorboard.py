"""TensorBoard over HTTP: two tiny meta-training runs (different scheduler policies) are served by the
`tensorboard` command on 127.0.0.1, and its data API must return the dashboard's layout in reading
order, a chart and a description for every scalar, and an HParams session per run with its config
keys and result metrics."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gsrl.jobs.dashboard import meta_training_dashboard
from gsrl.jobs.train import Trainer

POLICIES = ("gsmeta", "uniform")


@pytest.fixture(scope="module")
def logdir(tiny_config, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    for policy in POLICIES:
        Trainer(tiny_config(f"scheduler.policy={policy}", f"name={policy}-run"), runs / f"{policy}-run").run()
    return runs


@pytest.fixture(scope="module")
def server(logdir):
    """The URL of a `tensorboard --logdir` process listening on 127.0.0.1 (an ephemeral port)."""
    command = [str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(logdir), "--host", "127.0.0.1",
               "--port", "0", "--load_fast", "false"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    for line in process.stdout:
        found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if found:
            url = found.group(1)
            break
    assert url, "tensorboard printed no address"
    yield url
    process.terminate()
    process.wait(timeout=30)


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_for(read, ready, seconds: float = 90.0):
    """TensorBoard loads event files in the background: poll until `ready(read())`."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if ready(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_custom_scalars_layout_opens_on_evaluation_and_ends_on_infrastructure(server):
    layout = wait_for(lambda: get(f"{server}/data/plugin/custom_scalars/layout"), lambda v: bool(v))
    titles = [category["title"] for category in layout["category"]]
    assert titles == ["1. evaluation: test ROC-AUC", "2. losses", "3. scheduler", "4. optimisation",
                      "5. infrastructure"]
    first_chart = layout["category"][0]["chart"][0]["multiline"]["tag"]
    assert first_chart == ["eval/auc_mean", "eval/final_auc_mean"]  # both protocols, side by side
    scheduler = {c["title"]: c["multiline"]["tag"] for c in layout["category"][2]["chart"]}
    assert ["scheduler/entropy", "scheduler/entropy_max"] in scheduler.values()


def test_every_scalar_has_a_chart_and_a_description(server, tiny_config):
    run = f"{POLICIES[0]}-run/tensorboard"
    tags = wait_for(lambda: get(f"{server}/data/plugin/scalars/tags"),
                    lambda v: "eval/final_auc_mean" in v.get(run, {}))[run]
    dashboard = meta_training_dashboard(tiny_config())
    for tag, info in tags.items():
        assert dashboard.covers(tag), f"{tag} is in no custom-scalars chart"
        assert info["description"], f"{tag} has no description"
    assert "NT-Xent" in tags["scheduler/reward"]["description"]
    assert {"eval/auc_mean", "meta/query_loss", "meta/support_loss", "meta/contrastive_loss", "scheduler/entropy",
            "scheduler/entropy_max", "workers/healthy", "time/iteration_s"} <= set(tags)
    series = get(f"{server}/data/plugin/scalars/scalars?run={run}&tag=scheduler/entropy_max")
    assert [point[2] for point in series] == pytest.approx([math.log(3)] * 4)  # 3 candidate pairs


def test_hparams_sessions_compare_policies_by_config_and_results(server, logdir):
    experiment = wait_for(lambda: post(f"{server}/data/plugin/hparams/experiment", {"experimentName": ""}),
                          lambda v: bool(v.get("metricInfos")))
    hparams = {info["name"] for info in experiment["hparamInfos"]}
    assert {"scheduler.policy", "meta.algorithm", "run.seed", "episode.shots", "data.dataset"} <= hparams
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert metrics == {"result/auc_paper", "result/auc_honest", "result/auc_honest_std", "result/query_loss",
                       "result/selection_entropy"}

    request = {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                                         "STATUS_RUNNING"],
               "colParams": [{"hparam": "scheduler.policy"}]
               + [{"metric": {"group": "", "tag": tag}} for tag in sorted(metrics)],
               "startIndex": 0, "sliceSize": 10}
    groups = post(f"{server}/data/plugin/hparams/session_groups", request)["sessionGroups"]
    by_policy = {g["hparams"]["scheduler.policy"]: g for g in groups}
    assert set(by_policy) == set(POLICIES)
    for policy, group in by_policy.items():
        results = json.loads((logdir / f"{policy}-run" / "results.json").read_text())
        values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert values["result/auc_honest"] == pytest.approx(results["protocols"]["honest"]["auc_mean"], rel=1e-6)
        assert values["result/auc_paper"] == pytest.approx(results["protocols"]["paper"]["auc_mean"], rel=1e-6)
        selection = results["selection"]  # the policy's entropy over its maximum, last tenth of the run
        assert values["result/selection_entropy"] == pytest.approx(
            selection["entropy_by_tenth"][-1] / selection["entropy_max_by_tenth"][-1], rel=1e-6)
