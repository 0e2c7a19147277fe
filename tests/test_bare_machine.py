"""Meta-training needs neither RDKit nor Ray once the data is featurized: a bare accelerator machine (torch
and torch-geometric only) trains and evaluates from the processed cache with the local backend."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from gsrl.runtime import load_dataset
from tests.conftest import TINY_OVERRIDES

SCRIPT = textwrap.dedent("""
    import sys

    class Missing:  # what a machine without these packages shows
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("rdkit", "ray"):
                raise ModuleNotFoundError(f"No module named {name!r}")

    sys.meta_path.insert(0, Missing())
    from gsrl.config import load_config
    from gsrl.jobs.train import MetaTrainingDriver

    driver = MetaTrainingDriver(load_config(None, sys.argv[1:]))
    driver.reset()
    step = driver.train_step()
    result = driver.evaluate(0, draws=1)
    driver.close()
    assert step.step == 1 and 0.0 < result.mean < 1.0, (step.step, result.mean)
    assert not any(m.split(".")[0] in ("rdkit", "ray") for m in sys.modules)
    print("trained and evaluated without RDKit and Ray")
""")


def test_meta_training_runs_from_the_processed_cache_without_rdkit_or_ray(tiny_config, data_root, cache_dir):
    config = tiny_config()
    load_dataset(config)  # featurize here (RDKit) so that the cache is warm
    overrides = [f"data.root={data_root}", f"data.cache_dir={cache_dir}", *TINY_OVERRIDES]
    done = subprocess.run([sys.executable, "-c", SCRIPT, *overrides], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "without RDKit and Ray" in done.stdout
