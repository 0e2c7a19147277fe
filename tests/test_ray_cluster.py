"""`gsrl train` on Ray as users run it: joining a real two-node cluster, and a killed driver resumed.

Both tests start real Ray processes (raylets, GCS, worker actors), so they take tens of seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import ray
import torch
from click.testing import CliRunner
from ray.cluster_utils import Cluster
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gsrl.checkpoint import CheckpointStore
from gsrl.cli import main
from gsrl.jobs.train import Trainer

from .conftest import TINY_OVERRIDES

ACTOR_TAGS = ["workers/healthy", "workers/restarts", "workers/weights_lag", "time/pool_s", "time/adapt_s",
              "time/learn_s", "time/sync_s", "time/iteration_s", "throughput/episodes_per_s"]


DEFAULTS = Path(__file__).resolve().parent.parent / "configs" / "defaults.yaml"


def _overrides(data_root: Path, cache_dir: Path, *extra: str) -> list[str]:
    """`-c defaults.yaml` plus the tiny test overrides: the config `tiny_config()` builds in-process."""
    args = ["-c", str(DEFAULTS)]
    for item in (f"data.root={data_root}", f"data.cache_dir={cache_dir}", *TINY_OVERRIDES, "run.threads=1", *extra):
        args += ["-o", item]
    return args


def test_train_on_a_two_node_cluster_places_workers_on_both_nodes(data_root, cache_dir, tmp_path):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    run_dir = tmp_path / "two-nodes"
    try:
        result = CliRunner().invoke(main, ["train", "--address", cluster.address, "--run-dir", str(run_dir),
                                           *_overrides(data_root, cache_dir, "run.iterations=3", "eval.every=3",
                                                       "run.workers=2", "ray.placement=spread")])
        assert result.exit_code == 0, result.output + repr(result.exception)
        node_ids = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    finally:
        ray.shutdown()
        cluster.shutdown()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["iterations"] == 3 and results["backend"]["name"] == "ray"
    worker_nodes = [w["node"] for w in results["backend"]["workers"]]
    assert len(set(worker_nodes)) == 2 and set(worker_nodes) <= node_ids

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    for tag in ACTOR_TAGS:
        assert [e.step for e in events.Scalars(tag)] == [1, 2, 3], tag
    assert {e.value for e in events.Scalars("workers/healthy")} == {2.0}
    assert {e.value for e in events.Scalars("workers/weights_lag")} == {0.0}


def test_killed_driver_resumes_to_the_uninterrupted_result(data_root, cache_dir, tiny_config, tmp_path):
    overrides = ("run.iterations=6", "eval.every=3", "run.threads=1")
    threads = torch.get_num_threads()
    reference = Trainer(tiny_config(*overrides), tmp_path / "reference")  # local backend, one worker
    reference.run()
    torch.set_num_threads(threads)

    run_dir = tmp_path / "killed"
    gsrl = str(Path(sys.executable).parent / "gsrl")
    command = [gsrl, "train", "--run-dir", str(run_dir),
               *_overrides(data_root, cache_dir, *overrides, "run.backend=ray", "run.workers=2")]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = CheckpointStore(run_dir / "checkpoints")
    deadline = time.monotonic() + 300
    while not (store.directory / "metadata.json").exists():
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    started = psutil.Process(driver.pid).children(recursive=True)  # its embedded Ray cluster
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    killed_at = store.load_latest()[1]["iteration"]
    assert killed_at < 6

    result = subprocess.run([gsrl, "train", "--resume", str(run_dir)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    _, survivors = psutil.wait_procs(started, timeout=120)  # Ray's agents notice their raylet is gone
    assert not survivors, f"Ray processes outlived their driver: {[p.name() for p in survivors]}"
    resumed_state, entry = store.load_latest()
    reference_state, _ = CheckpointStore(tmp_path / "reference" / "checkpoints").load_latest()
    assert entry["iteration"] == 6
    model, expected = resumed_state["env"]["learner"]["model"], reference_state["env"]["learner"]["model"]
    assert all(torch.equal(model[k], expected[k]) for k in expected)
    policy, expected_policy = resumed_state["policy"], reference_state["policy"]
    assert all(torch.equal(policy[k], expected_policy[k]) for k in expected_policy)
    assert resumed_state["history"][-1]["reward"] == reference_state["history"][-1]["reward"]
    resumed = json.loads((run_dir / "results.json").read_text())
    uninterrupted = json.loads((tmp_path / "reference" / "results.json").read_text())
    assert resumed["curve"] == uninterrupted["curve"]
    assert [s["start_iteration"] for s in resumed["segments"]] == [0, killed_at]
