"""cluster.yaml passes Ray's own cluster-launcher schema offline and has the nodes studies need."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from fdsl_ray.study.spec import StudySpec

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture(scope="module")
def prepared(raw) -> dict:
    """What `ray up` validates: the file merged with Ray's AWS defaults (no AWS call)."""
    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    return config


def test_ray_schema_accepts_the_file(prepared):
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] == "head"


def test_ray_schema_rejects_a_fractional_resource(raw):
    """The check above can fail: node resources must be integers."""
    broken = copy.deepcopy(raw)
    broken["available_node_types"]["gpu_worker"]["resources"]["GPU"] = 0.5
    with pytest.raises(jsonschema.ValidationError, match="integer"):
        validate_config(prepare_config(broken))


def test_head_runs_no_tasks(prepared):
    head = prepared["available_node_types"][prepared["head_node_type"]]
    assert head["resources"] == {"CPU": 0}
    assert head["max_workers"] == 0


def test_gpu_and_cpu_worker_types(prepared):
    types = prepared["available_node_types"]
    gpu, cpu = types["gpu_worker"], types["cpu_worker"]
    assert 1 <= gpu["resources"]["GPU"] <= 8 and gpu["resources"]["CPU"] >= 4
    assert gpu["node_config"]["InstanceType"].startswith(("g5.", "g6.", "p4", "p5"))
    assert "GPU" not in cpu["resources"] and cpu["resources"]["CPU"] >= 8
    for worker in (gpu, cpu):
        assert 1 <= worker["min_workers"] <= worker["max_workers"]
        # Workers write checkpoints and results to the S3 storage path themselves.
        assert worker["node_config"]["IamInstanceProfile"]
    assert prepared["max_workers"] >= gpu["max_workers"] + cpu["max_workers"]


def test_worker_types_declare_the_labels_a_study_places_its_work_with(prepared):
    """A spec naming the labels fits the cluster's minimum size (min_workers of each type)."""
    types = prepared["available_node_types"]
    cluster: dict[str, float] = {}
    for node in types.values():
        for resource, amount in node["resources"].items():
            cluster[resource] = cluster.get(resource, 0) + amount * node.get("min_workers", 0)
    assert types["gpu_worker"]["resources"]["train"] == 1
    assert types["cpu_worker"]["resources"]["render"] == 1
    spec = StudySpec(name="placed", generator={"name": "onepfrac"},
                     space={"delta": {"type": "float", "low": 0.01, "high": 0.4}},
                     pretrain={"worker_resource": "train", "data_actor_resource": "render",
                               "use_gpu": True})
    assert spec.concurrency(cluster) == types["gpu_worker"]["min_workers"]


def test_every_node_installs_this_checkout(prepared):
    mounts = prepared["file_mounts"]
    (remote,) = [path for path, local in mounts.items() if local == "."]
    install = [cmd for cmd in prepared["setup_commands"] if f"pip install -q -e {remote}" in cmd]
    assert install, prepared["setup_commands"]
    assert install[0] in prepared["head_setup_commands"]
    assert ".venv" in prepared["rsync_exclude"]


def test_nodes_run_the_ray_version_the_project_is_tested_with(prepared):
    image = prepared["docker"]["image"]
    assert image.startswith("rayproject/ray:")
    assert image.split(":")[1].split("-")[0] == ray.__version__


def test_every_node_can_mount_the_efs_alternative_inside_its_container(prepared):
    """Storage on a file system instead of S3: all nodes mount the same folder."""
    mount = "/mnt/fdsl"
    assert f"-v {mount}:{mount}" in prepared["docker"]["run_options"]
    commands = " ".join(prepared["initialization_commands"])
    region = prepared["provider"]["region"]
    assert "sudo mount -t nfs4" in commands
    assert f'.efs.{region}.amazonaws.com:/" {mount}' in commands


def test_setup_commands_are_valid_shell(prepared):
    for command in (*prepared["initialization_commands"], *prepared["setup_commands"]):
        checked = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
        assert checked.returncode == 0, (command, checked.stderr)


def test_the_dashboard_listens_on_the_head_loopback_only(prepared):
    """`ray dashboard cluster.yaml` tunnels to it over SSH; nothing opens it to the network."""
    (start,) = [cmd for cmd in prepared["head_start_ray_commands"] if "ray start" in cmd]
    assert "--dashboard-host=127.0.0.1" in start
    assert "0.0.0.0" not in CLUSTER_YAML.read_text().split("head_start_ray_commands")[1]


def test_every_node_runs_ray_with_the_shared_token_and_train_state_tracking(prepared):
    assert prepared["file_mounts"]["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [cmd for cmd in prepared[key] if "ray start" in cmd]
        assert "export RAY_AUTH_MODE=token RAY_TRAIN_ENABLE_STATE_TRACKING=1;" in start
        checked = subprocess.run(["bash", "-n", "-c", start], capture_output=True, text=True)
        assert checked.returncode == 0, (start, checked.stderr)
