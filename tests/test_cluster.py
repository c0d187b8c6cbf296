"""fdsl_ray.cluster: the one CPU rule of a local Ray, and library functions that refuse to run
(in one line, naming the helper) instead of starting a Ray of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fdsl_ray.cluster import LOCAL_MIN_CPUS, joins_cluster, local_cpus

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("needed", "cores", "expected"), [
    (0, 2, LOCAL_MIN_CPUS),  # a 2-core laptop still gets the nested-deadlock minimum
    (3.5, 2, 4),
    (6.5, 2, 7),  # a job reserving more than the cores gets it (fractions rounded up)
    (2, 16, 16),  # a bigger machine keeps all its cores
    (20, 16, 20),
])
def test_local_cpus_is_the_largest_of_the_minimum_the_cores_and_the_need(needed, cores,
                                                                          expected):
    assert local_cpus(needed, cores) == expected


def test_an_address_or_ray_address_joins_and_local_never_does(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not joins_cluster(None)
    assert joins_cluster("auto") and joins_cluster("10.0.0.1:6379")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert joins_cluster(None)
    assert not joins_cluster("local")


# Each runs in a fresh interpreter: this pytest process may hold the session Ray already.
_SETUP = """
import json, sys, tempfile
import ray
generator = {"name": "onepfrac", "image_size": 16, "n_points": 300, "num_categories": 2,
             "images_per_category": 2}
root = tempfile.mkdtemp()
"""
_DATA_CALLS = """
from fdsl_ray.data import ensure_store, synthetic_dataset
from fdsl_ray.data.stream import actor_pool
calls = {
    "actor_pool": lambda: actor_pool(None, 1.0),
    "synthetic_dataset": lambda: synthetic_dataset(generator),
    "ensure_store": lambda: ensure_store(generator, root, progress=False),
}
"""
# Importing Tune, Train and torch takes tens of seconds on a loaded 2-core machine.
_TRAIN_CALLS = """
from fdsl_ray.study.run import run_study
from fdsl_ray.study.spec import StudySpec
from fdsl_ray.train import PretrainConfig, pretrain
spec = StudySpec(name="s", generator=generator,
                 space={"delta": {"type": "categorical", "choices": [0.05, 0.1]}})
config = PretrainConfig(model="cpu_micro", epochs=1, batch_size=2, warmup_epochs=0)
calls = {
    "run_study": lambda: run_study(spec, study_dir=root + "/s"),
    "pretrain": lambda: pretrain(generator, config, storage_path=root, run_name="r"),
}
"""
_CALL = """
errors = {}
for name, call in calls.items():
    try:
        call()
    except RuntimeError as error:
        errors[name] = str(error)
print(json.dumps({"errors": errors, "ray_started": ray.is_initialized()}))
"""


@pytest.mark.parametrize(("calls", "names"), [
    (_DATA_CALLS, ["actor_pool", "ensure_store", "synthetic_dataset"]),
    pytest.param(_TRAIN_CALLS, ["pretrain", "run_study"], marks=pytest.mark.slow),
], ids=["data", "train"])
def test_library_functions_without_ray_refuse_in_one_line_and_start_none(calls, names):
    environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    environment["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", _SETUP + calls + _CALL], capture_output=True,
                          text=True, env=environment, cwd=ROOT, timeout=300, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ray_started"] is False
    assert sorted(result["errors"]) == names
    for name, message in result["errors"].items():
        assert message == (f"{name} needs a running Ray: call fdsl_ray.cluster.start_ray() "
                           "first (the fdsl command, the study scripts and the benchmarks do)")
