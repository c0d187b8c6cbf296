"""One local Ray for the whole session (Ray tests ask for the `ray_session` fixture), and one
local S3 endpoint (moto's server on 127.0.0.1) that Ray's workers see through AWS_* variables."""

from __future__ import annotations

import logging
import os
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


@pytest.fixture(scope="session")
def ray_session(s3_endpoint):
    import ray

    # 4 logical CPUs on a 2-core machine: nested Tune/Train/Data deadlock on 2.
    ray.init(
        num_cpus=4,
        object_store_memory=1_000_000_000,
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()
