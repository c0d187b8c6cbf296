"""A one-trial study on a simulated three-node Ray cluster, undisturbed and then losing a node.

The head (no CPU) runs the driver: Tune and Optuna. The render node declares the "render"
resource and hosts the render actors (pretrain.data_actor_resource); the training node
declares "train" and hosts the trial, its Train controller and worker and the stream's
executor (pretrain.worker_resource). The same study runs once undisturbed, once losing the
render node and once losing the training node: the node's Ray processes are killed
(`Cluster.remove_node`, SIGKILL) while it works (`lose_node`), and a node of the same kind
joins at once, as the cluster launcher replaces a lost node of a type below min_workers.
It runs in a process of its own (tests/study/test_node_loss.py starts it while the test
session's Ray is down), and by hand for docs/cluster.md's figures:

    flock /tmp/fdsl-ray.lock python tests/study/node_loss.py OUT_DIR

and writes OUT_DIR/node_loss.json: per scenario the study's wall time, when the node was lost
and what ran on it, and the trial's top-1, status, Tune failures and pre-training attempts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster
from ray.util.state import list_actors
from ray.util.state.exception import RayStateApiException

from fdsl_ray import storage
from fdsl_ray.cluster import start_ray
from fdsl_ray.study.run import run_study
from fdsl_ray.study.spec import StudySpec
from fdsl_ray.study.trial import TRIAL_RECORD

RENDER, TRAIN = "render", "train"
SCENARIOS = ("undisturbed", RENDER, TRAIN)
# 1 CPU each: the trial, its Train worker and the scratch baseline's task on the training node,
# the render actor on the render node, and Ray Data's read tasks on either.
NODE_CPUS = {RENDER: 2, TRAIN: 4}
NODE_STORE_BYTES = 100 * 1024**2
SPEC = {
    "name": "node-loss",
    "generator": {"name": "onepfrac", "image_size": 16, "n_points": 1_000,
                  "num_categories": 4, "images_per_category": 8},
    "space": {"delta": {"type": "categorical", "choices": [0.2]}},
    "sampler": "grid",
    "num_samples": 1,
    "max_failures": 2,
    "pretrain": {"model": "cpu_micro", "epochs": 2, "batch_size": 8, "lr": 0.05,
                 "warmup_epochs": 0, "num_workers": 1, "num_data_actors": 1, "max_failures": 2,
                 "worker_resource": TRAIN, "data_actor_resource": RENDER},
    "finetune": {"epochs": 1, "warmup_epochs": 0, "shots": 2, "batch_size": 8},
}


def add_node(cluster: Cluster, kind: str) -> Any:
    return cluster.add_node(num_cpus=NODE_CPUS[kind], resources={kind: 1},
                            object_store_memory=NODE_STORE_BYTES, include_dashboard=False)


def registered_checkpoints(study_dir: Path) -> int:
    """Checkpoints the Train controllers have registered (a checkpoint folder alone may be an
    orphan that a resumed run would not see)."""
    count = 0
    for snapshot in (study_dir / "pretrain").glob("*/checkpoint_manager_snapshot.json"):
        try:
            count += len(json.loads(snapshot.read_text())["checkpoint_results"])
        except (OSError, ValueError, KeyError):  # being written
            continue
    return count


class Study(threading.Thread):
    """The scenario's study, in a daemon thread: should the main thread fail, the script exits
    without waiting for it."""

    def __init__(self, study_dir: Path) -> None:
        super().__init__(daemon=True, name="study")
        self.study_dir = study_dir
        self.table: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.table = run_study(StudySpec(**SPEC), study_dir=self.study_dir, verbose=0)
        except BaseException as error:  # raised again in the main thread, by result()
            self.error = error

    def result(self) -> Any:
        self.join()
        if self.error is not None:
            raise self.error
        return self.table


def lose_node(cluster: Cluster, nodes: dict[str, Any], kind: str, study_dir: Path,
              started: float, study: Study) -> dict[str, Any]:
    """Removes the `kind` node once it is busy and adds a node of that kind in its place: the
    render node as soon as it hosts a render actor (while the stream renders), the training
    node once the Train controller has registered a pre-training checkpoint (so that the
    retried trial resumes from it). It runs in the main thread while the study runs in
    another: a Ray node installs signal handlers, which only the main thread may, and its
    processes die with the thread that started them (PR_SET_PDEATHSIG), so a node added from a
    thread that then ends would die at once."""
    while study.is_alive():
        node = nodes[kind]
        try:
            due = node_is_due(node, kind, study_dir)
        except RayStateApiException:  # the dashboard is slow to answer on a loaded host
            due = False
        if due:
            record = {"lost_after_seconds": time.perf_counter() - started,
                      "actors_lost": actors_on(node.node_id)}
            cluster.remove_node(node, allow_graceful=False)
            nodes[kind] = add_node(cluster, kind)
            record["replaced_after_seconds"] = time.perf_counter() - started
            return record
        time.sleep(0.1)
    return {}


def node_is_due(node: Any, kind: str, study_dir: Path) -> bool:
    if kind == RENDER:
        return any("RenderActor" in name for name in actors_on(node.node_id))
    return registered_checkpoints(study_dir) > 0


def actors_on(node_id: str) -> list[str]:
    """Class names of the actors alive on a node (Ray's state API); Ray Data names a render
    actor's class MapWorker(MapBatches(RenderActor)). detail=True: without it, one run's
    473 queries listed no actor on the render node while its render actor ran there."""
    actors = list_actors(filters=[("node_id", "=", node_id), ("state", "=", "ALIVE")],
                         detail=True)
    return sorted(actor.class_name for actor in actors)


def trial_summary(row: Any) -> dict[str, Any]:
    trial_dir = Path(row["trial_dir"])
    record = json.loads((trial_dir / TRIAL_RECORD).read_text())
    error_file = trial_dir / "error.txt"
    failures = error_file.read_text().count("Failure #") if error_file.exists() else 0
    history = record.get("history", [])
    return {
        "status": row["status"],
        "error": row["error"],
        "top1": float(row["top1"]),
        "tune_failures": failures,
        "pretrain_attempts": len(record.get("environment", {}).get("pretrain", [])),
        "epoch_attempts": [epoch["attempt"] for epoch in history],
        "stream_start_epochs": [epoch["stream_start_epoch"] for epoch in history],
        "losses": [epoch["loss"] for epoch in history],
    }


def run_scenario(cluster: Cluster, nodes: dict[str, Any], scenario: str,
                 out: Path) -> dict[str, Any]:
    study_dir = out / scenario
    started = time.perf_counter()
    study = Study(study_dir)
    study.start()
    loss = (lose_node(cluster, nodes, scenario, study_dir, started, study)
            if scenario != "undisturbed" else None)
    table = study.result()
    return {"wall_seconds": time.perf_counter() - started, "node_loss": loss,
            "trials": [trial_summary(row) for _, row in table.iterrows()]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory for the studies and node_loss.json")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    args = parser.parse_args()
    # SIGTERM (the test's parent gone, a timeout) exits through the finally below, which
    # shuts the cluster down rather than leave its processes behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    started = time.perf_counter()
    # The head's dashboard serves the state API, which Ray Train's own lookups find through
    # this address (else through /tmp/ray/ray_current_cluster, which may name another Ray).
    port = free_port()
    os.environ["RAY_API_SERVER_ADDRESS"] = f"http://127.0.0.1:{port}"
    cluster = Cluster()
    results: dict[str, Any] = {}
    try:
        cluster.add_node(num_cpus=0, object_store_memory=NODE_STORE_BYTES,
                         include_dashboard=True, dashboard_port=port)
        nodes = {kind: add_node(cluster, kind) for kind in NODE_CPUS}
        cluster.wait_for_nodes()
        start_ray(cluster.address, configure_logging=False, log_to_driver=False)
        results["cluster_start_seconds"] = time.perf_counter() - started
        for scenario in args.scenarios:
            results[scenario] = run_scenario(cluster, nodes, scenario, args.out)
            print(scenario, json.dumps(results[scenario]), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    storage.write_text(str(args.out / "node_loss.json"), json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
