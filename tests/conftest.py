"""One local Ray for the whole session (Ray tests ask for the `ray_session` fixture), and one
local S3 endpoint (moto's server on 127.0.0.1) that Ray's workers see through AWS_* variables."""

from __future__ import annotations

import logging
import os
import socket
import uuid

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def s3_endpoint():
    """An S3 server on the loopback; its address is in the environment before Ray starts."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    variables = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "fdsl-test",
        "AWS_SECRET_ACCESS_KEY": "fdsl-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    yield variables["AWS_ENDPOINT_URL"]
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    """A new, empty bucket: returns its s3:// URI."""
    import boto3

    bucket = f"fdsl-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}"


_DASHBOARD: list[str] = []


def _start_local_ray() -> None:
    """The session's local Ray, with the dashboard and the environment a study script gives
    its local Ray, so that a test can check what the dashboard shows."""
    from fdsl_ray.cluster import start_ray

    port = _free_port()
    # Ray Train's own state lookups (TrainStateActor, PlacementGroupCleaner) find the
    # dashboard through /tmp/ray/ray_current_cluster, which a `ray start` elsewhere on this
    # host may have left naming a dead cluster: they would wait on it. This names ours.
    os.environ["RAY_API_SERVER_ADDRESS"] = f"http://127.0.0.1:{port}"
    # "local": never a cluster that RAY_ADDRESS or a `ray start` on this host names; exactly 4
    # logical CPUs on any machine (LOCAL_MIN_CPUS: nested Tune/Train/Data deadlock on 2).
    context = start_ray(
        "local",
        num_cpus=4,
        object_store_memory=1_000_000_000,
        include_dashboard=True,
        dashboard_port=port,
        configure_logging=False,
        log_to_driver=False,
    )
    _DASHBOARD[:] = [f"http://{context.dashboard_url}"]


@pytest.fixture(scope="session")
def ray_session(s3_endpoint):
    """One local Ray per pytest session (`_start_local_ray`): never a second one."""
    import ray

    _start_local_ray()
    yield ray
    ray.shutdown()


@pytest.fixture
def without_local_ray():
    """For a test that starts a Ray of its own in a process of its own (one Ray on the host at
    a time): the session's local Ray, if up, is shut down meanwhile and started again after."""
    import ray

    was_up = ray.is_initialized()
    if was_up:
        ray.shutdown()
    yield
    if was_up:
        _start_local_ray()


@pytest.fixture
def ray_dashboard(ray_session) -> str:
    """The session Ray's dashboard address (http://127.0.0.1:PORT)."""
    return _DASHBOARD[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _own_processes(marker: str) -> list:
    """Live processes started by this test session (descendants of this process: its local
    Ray's raylet and the workers it spawned) whose command line contains `marker`, such as
    "RayTrainWorker": never another job's or another user's process of the same name."""
    import psutil

    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if marker in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:  # exited while we looked
            continue
    return found


@pytest.fixture(scope="session")
def own_processes():
    """The function above: a test kills only processes that its own session started."""
    return _own_processes


@pytest.fixture
def no_ray(monkeypatch):
    """Any attempt to start or join Ray fails the test, even if this process has a Ray."""
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started before the input was refused")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
