"""Category tables across Ray: the tasks' table is the one a single process computes, cached
beside the stores, never half-written, and a cached table of another config or version is
refused by name."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fdsl_ray import storage
from fdsl_ray.data.table import PARALLEL_MIN, find_table, plan_table, table_path_for
from fdsl_ray.formulas import create_generator
from fdsl_ray.formulas.table import compute_table

SMALL = {"name": "onepfrac", "image_size": 16, "n_points": 500, "num_categories": 4}


def test_ray_tasks_compute_the_single_process_table_and_cache_it(ray_session, tmp_path):
    config = {**SMALL, "num_categories": PARALLEL_MIN}
    table = plan_table(config, tmp_path)
    values = dict(config)
    expected = compute_table(create_generator(values.pop("name"), **values))
    assert table.digest == expected.digest
    path = table_path_for(config, tmp_path)
    assert path.startswith(f"{tmp_path}/tables/onepfrac-") and storage.is_file(path)
    assert find_table({**config, "image_size": 8}, tmp_path).digest == table.digest


@pytest.mark.slow
def test_a_study_trial_plans_a_large_table_beside_its_own_placement_group(ray_session, tmp_path):
    """A trial holds a one-bundle placement group that captures its tasks; the table's Ray
    tasks must run outside it (the quickstart's 100 categories failed every trial)."""
    from ray import tune

    config = {**SMALL, "num_categories": PARALLEL_MIN}

    def trial(_: dict) -> dict:
        return {"digest": plan_table(config).digest}

    tuner = tune.Tuner(tune.with_resources(trial, {"cpu": 1}),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="plan"))
    result = tuner.fit()[0]
    assert result.error is None
    values = dict(config)
    assert result.metrics["digest"] == compute_table(
        create_generator(values.pop("name"), **values)).digest


def test_an_interrupted_search_leaves_no_table(tmp_path):
    config = {**SMALL, "filling_threshold": 0.99, "max_attempts": 1}
    with pytest.raises(ValueError, match="no draw of category 0 filled more than"):
        plan_table(config, tmp_path)
    assert storage.list_names(tmp_path / "tables") == []
    assert find_table(config, tmp_path) is None


def test_a_cached_table_of_another_config_or_version_is_refused_by_name(tmp_path):
    table = plan_table(SMALL, tmp_path)
    path = table_path_for(SMALL, tmp_path)
    storage.write_text(path, dataclasses.replace(table, version="0.0.1").to_json())
    with pytest.raises(ValueError, match=rf"category table {path} was computed by fdsl-ray "
                       r"0\.0\.1"):
        find_table(SMALL, tmp_path)
    other = plan_table({**SMALL, "seed": 5}, tmp_path)
    storage.write_text(path, other.to_json())
    with pytest.raises(ValueError, match=rf"category table {path} belongs to another config"):
        plan_table(SMALL, tmp_path)
    data = json.loads(table.to_json())
    data["systems"][1] = data["systems"][0]
    storage.write_text(path, json.dumps(data))
    with pytest.raises(ValueError, match=rf"category table {path} is corrupt"):
        find_table(SMALL, tmp_path)
