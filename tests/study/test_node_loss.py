"""A study survives losing its render node, then its training node, on a simulated cluster.

The cluster (a head and two labelled worker nodes, `ray.cluster_utils.Cluster`) is a second
Ray, so it runs in a process of its own (tests/study/node_loss.py) while the session's local
Ray is down (`without_local_ray`).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("node_loss.py")
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 900


def _die_with_parent() -> None:
    """In the child: SIGTERM when pytest dies (killed by an outer timeout, say), which
    node_loss.py turns into an exit that shuts its cluster down."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_scenarios(out: Path) -> dict:
    """Runs node_loss.py and returns its node_loss.json; on a timeout its process group (the
    script and the Ray processes it started) is killed."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")}  # the session Ray's
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    with subprocess.Popen([sys.executable, str(SCRIPT), str(out)], env=env, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True, preexec_fn=_die_with_parent) as process:
        try:
            output, _ = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
    assert process.returncode == 0, output[-4000:]
    return json.loads((out / "node_loss.json").read_text())


@pytest.mark.slow
@pytest.mark.long
def test_a_study_survives_losing_its_render_node_then_its_training_node(without_local_ray,
                                                                        tmp_path):
    results = run_scenarios(tmp_path)
    (undisturbed,) = results["undisturbed"]["trials"]
    assert undisturbed["tune_failures"] == 0 and undisturbed["pretrain_attempts"] == 1
    for scenario in ("undisturbed", "render", "train"):
        (trial,) = results[scenario]["trials"]
        assert (trial["status"], trial["error"]) == ("TERMINATED", ""), scenario
        # Every epoch's loss and the fine-tuning repeat exactly, retried or not.
        assert trial["losses"] == undisturbed["losses"], scenario
        assert trial["top1"] == undisturbed["top1"], scenario

    render = results["render"]["node_loss"]
    assert "RenderActor" in " ".join(render.get("actors_lost", [])), render
    train = results["train"]["node_loss"]
    assert {"RayTrainWorker", "ImplicitFunc"} <= set(train.get("actors_lost", [])), train
    # The trial died with the training node: Tune retried it, and its pre-training continued
    # from its checkpoint (a second attempt), its stream starting at the checkpoint's epoch.
    (retried,) = results["train"]["trials"]
    assert retried["tune_failures"] >= 1 and retried["pretrain_attempts"] >= 2, retried
    resumed_at = retried["epoch_attempts"].index(2)
    assert retried["stream_start_epochs"][resumed_at:] == [resumed_at] * (
        len(retried["losses"]) - resumed_at), retried
