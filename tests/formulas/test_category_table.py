"""Category tables (no Ray): the same images as searching, never a search once given, and
a table of another config, another version or a damaged file refused by name."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fdsl_ray.formulas import create_generator
from fdsl_ray.formulas.table import CategoryTable, compute_table, library_version, table_hash

CONFIGS = {
    "onepfrac": {"num_categories": 6, "image_size": 16, "render_size": 32, "n_points": 500},
    "fractaldb": {"num_categories": 3, "image_size": 16, "render_size": 32, "n_points": 500,
                  "search_points": 5000, "filling_threshold": 0.01},
    "exfractaldb": {"num_categories": 3, "image_size": 16, "render_size": 16, "n_points": 500,
                    "search_points": 500},
}


@pytest.fixture(scope="module")
def tables():
    return {name: compute_table(create_generator(name, **config), chunk=2)
            for name, config in CONFIGS.items()}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_table_read_back_renders_the_searched_images(tables, name):
    searched = create_generator(name, **CONFIGS[name])
    planned = create_generator(name, **CONFIGS[name])
    planned.use_table(CategoryTable.from_json(tables[name].to_json(), "test"))
    labels = np.repeat(np.arange(searched.num_classes), 5)
    instances = np.tile(np.arange(5), searched.num_classes)
    assert np.array_equal(planned.render(labels, instances), searched.render(labels, instances))
    assert [searched.search_category(label) for label in range(searched.num_classes)] == list(
        zip(tables[name].systems, tables[name].attempts, strict=True))


def test_a_generator_given_a_table_takes_its_categories_from_it(tables):
    table = tables["onepfrac"]
    swapped = dataclasses.replace(table, systems=(table.systems[1], table.systems[0],
                                                  *table.systems[2:]))
    generator = create_generator("onepfrac", **CONFIGS["onepfrac"])
    generator.use_table(swapped)
    assert generator.category_system(0).to_json() == table.systems[1]
    assert generator.base_system.to_json() == table.base


def test_the_table_hash_ignores_drawing_fields_only():
    base = create_generator("onepfrac", **CONFIGS["onepfrac"])
    drawn = create_generator("onepfrac", **{**CONFIGS["onepfrac"], "image_size": 8,
                                            "n_points": 99, "patch": False})
    reseeded = create_generator("onepfrac", **{**CONFIGS["onepfrac"], "seed": 1})
    assert table_hash(base) == table_hash(drawn) != table_hash(reseeded)
    weighted = create_generator("fractaldb", **{**CONFIGS["fractaldb"], "weights": [0.5]})
    assert table_hash(weighted) == table_hash(create_generator("fractaldb",
                                                               **CONFIGS["fractaldb"]))


def test_a_table_of_another_config_is_refused_by_name(tables):
    other = create_generator("onepfrac", **{**CONFIGS["onepfrac"], "seed": 3})
    with pytest.raises(ValueError, match=r"category table t\.json belongs to another config "
                       rf"\(onepfrac-{tables['onepfrac'].config_hash}, expected onepfrac-"):
        other.use_table(tables["onepfrac"], "t.json")
    with pytest.raises(ValueError, match="belongs to another config"):
        create_generator("fractaldb", **CONFIGS["fractaldb"]).use_table(tables["onepfrac"])


def test_a_table_of_another_library_version_is_refused(tables):
    old = dataclasses.replace(tables["fractaldb"], version="0.0.1")
    with pytest.raises(ValueError, match=rf"computed by fdsl-ray 0\.0\.1, this is "
                       rf"{library_version()}: .* refused"):
        create_generator("fractaldb", **CONFIGS["fractaldb"]).use_table(old)


def test_a_damaged_table_file_is_refused(tables):
    data = json.loads(tables["onepfrac"].to_json())
    data["attempts"][0] += 1
    with pytest.raises(ValueError, match=r"category table t\.json is corrupt: its sha256"):
        CategoryTable.from_json(json.dumps(data), "t.json")
    with pytest.raises(ValueError, match=r"category table t\.json is unreadable"):
        CategoryTable.from_json(tables["onepfrac"].to_json()[:-20], "t.json")


def test_generators_without_searches_take_no_table(tables):
    rcdb = create_generator("rcdb", num_categories=2, image_size=16, render_size=256)
    assert not rcdb.searches
    with pytest.raises(TypeError, match="has no category search"):
        rcdb.use_table(tables["onepfrac"])
