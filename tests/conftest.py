"""One local Ray for the whole session: Ray tests ask for the `ray_session` fixture."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def ray_session():
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
