"""Every registered generator: config errors, round trips and batch-independent bytes."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from fdsl_ray.formulas.presets import PRESETS, list_presets
from fdsl_ray.formulas.registry import (
    create_generator,
    generator_class,
    generator_settings,
    list_generators,
)

SMALL = {"image_size": 32, "n_points": 2000, "num_categories": 4}
# Thresholds tuned for full-size images are loosened for these tiny ones.
EXTRA = {"fractaldb": {"filling_threshold": 0.1}}
GENERATORS = list_generators()
LABELS = np.array([3, 0, 2, 0, 1, 3])
INSTANCES = np.array([0, 5, 1, 1002, 3, 7])


def _small(name: str) -> dict:
    return {"name": name, **SMALL, **EXTRA.get(name, {})}


def _digest(images: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes()).hexdigest()


def test_the_builtin_generators_are_registered():
    assert {"onepfrac", "fractaldb"} <= set(GENERATORS)


def test_unknown_generator_lists_the_known_ones():
    with pytest.raises(ValueError,
                       match=r"generator='nope' is unknown: must be one of .*fractaldb-1k"):
        create_generator("nope")


@pytest.mark.parametrize("name", list_presets())
def test_presets_resolve_to_their_generator_with_the_release_values(name):
    preset = PRESETS[name]
    settings = generator_settings(name)
    assert generator_class(name).name == preset.generator
    for key, value in preset.values.items():
        assert getattr(settings, key) == value
    assert preset.source  # every preset cites its reference files


def test_a_preset_takes_overrides_and_round_trips_as_its_generator():
    generator = create_generator("fractaldb-1k", image_size=32, num_categories=2,
                                 n_points=3000)
    config = generator.config
    assert config["name"] == "fractaldb" and config["render_size"] == 362
    assert config["weights"] == (0.2, 0.6, 1.4, 1.8) and config["num_categories"] == 2
    rebuilt = create_generator(**json.loads(json.dumps(config)))
    np.testing.assert_array_equal(rebuilt.render([0, 1], [0, 9]), generator.render([0, 1], [0, 9]))


def test_published_presets_pin_the_release_settings():
    assert dict(PRESETS["fractaldb-1k"].values) == {
        "num_categories": 1000, "render_size": 362, "n_points": 200_000,
        "weights": (0.2, 0.6, 1.4, 1.8), "filling_threshold": 0.2, "search_points": 100_000,
        "images_per_category": 1000, "renders_per_system": 10}
    assert PRESETS["1p-frac"].values["sigma"] == 3.5
    assert PRESETS["1p-frac-release"].values["sigma"] == 4.0
    assert PRESETS["exfractaldb-1k"].values["images_per_category"] == 1740
    assert PRESETS["rcdb-21k"].values["num_categories"] == 21_000


def test_one_instance_presets_pin_the_ofdb_and_visualatom_releases():
    fractaldb = dict(PRESETS["fractaldb-1k"].values)
    assert dict(PRESETS["ofdb-1k"].values) == {**fractaldb, "images_per_category": 1}
    assert dict(PRESETS["ofdb-21k"].values) == {**fractaldb, "images_per_category": 1,
                                                "num_categories": 21_000}
    assert dict(PRESETS["3d-ofdb-1k"].values) == {
        "num_categories": 1000, "images_per_category": 12, "clouds": 1, "n_points": 9999,
        "image_size": 224, "render_size": 224, "variance_threshold": 0.05}
    assert PRESETS["3d-ofdb-21k"].values["num_categories"] == 21_000
    assert dict(PRESETS["visualatom-1k"].values) == {
        "num_categories": 1000, "images_per_category": 1000, "image_size": 512,
        "render_size": 512}
    assert PRESETS["visualatom-21k"].values["num_categories"] == 21_000


def test_an_ofdb_image_is_fractaldb_instance_zero():
    # make_2dofdb.py renders the first weight row (a x 0.2) once, flip 0: FractalDB's id 0
    small = {"num_categories": 2, "image_size": 32}
    ofdb, fractaldb = create_generator("ofdb-1k", **small), create_generator("fractaldb-1k",
                                                                           **small)
    assert ofdb.instance_system(1, 0).maps[:, 0].tolist() == (
        fractaldb.category_system(1).maps[:, 0] * 0.2).tolist()
    np.testing.assert_array_equal(ofdb.render([0, 1], [0, 0]), fractaldb.render([0, 1], [0, 0]))
    assert ofdb.num_classes * ofdb.settings.images_per_category == 2


@pytest.mark.parametrize("name", GENERATORS)
def test_unknown_config_key_is_named(name):
    message = rf"unknown {re.escape(name)} config key\(s\) colour: allowed keys"
    with pytest.raises(ValueError, match=message):
        create_generator(name, colour=3)


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize(
    ("field", "value"),
    [("image_size", 0), ("image_size", -8), ("n_points", 0), ("num_categories", 0),
     ("images_per_category", -1), ("seed", -1)],
)
def test_bad_common_fields_are_named(name, field, value):
    with pytest.raises(ValueError, match=rf"{field}={value} is out of range"):
        create_generator(**{**_small(name), field: value})


@pytest.mark.parametrize("name", GENERATORS)
def test_bad_ids_are_refused(name):
    generator = create_generator(**_small(name))
    with pytest.raises(ValueError, match=r"label=4 is out of range: must be in \[0, 3\]"):
        generator.render([0, 4], [0, 0])
    with pytest.raises(ValueError, match=r"instance=-1 is out of range"):
        generator.render([0], [-1])
    with pytest.raises(ValueError, match=r"differ in length"):
        generator.render([0, 1], [0])


@pytest.mark.parametrize("name", GENERATORS)
def test_bytes_do_not_depend_on_batch_composition_or_order(name):
    generator = create_generator(**_small(name))
    batch = generator.render(LABELS, INSTANCES)
    size = generator.image_size
    assert batch.shape == (LABELS.size, size, size) and batch.dtype == np.uint8
    order = np.array([4, 2, 5, 0, 3, 1])
    fresh = create_generator(**generator.config)
    np.testing.assert_array_equal(fresh.render(LABELS[order], INSTANCES[order]), batch[order])
    for index in (0, 3):
        single = create_generator(**generator.config).render(LABELS[[index]], INSTANCES[[index]])
        np.testing.assert_array_equal(single[0], batch[index])
    assert len({image.tobytes() for image in batch}) > 1


@pytest.mark.parametrize("name", GENERATORS)
def test_config_round_trips_through_json(name):
    generator = create_generator(**_small(name))
    rebuilt = create_generator(**json.loads(json.dumps(generator.config)))
    assert rebuilt.config == generator.config
    assert rebuilt.num_classes == SMALL["num_categories"]


def test_bytes_are_the_same_in_another_process():
    script = (
        "import hashlib, json, sys\n"
        "import numpy as np\n"
        "from fdsl_ray.formulas.registry import create_generator\n"
        "configs, labels, instances = json.loads(sys.stdin.read())\n"
        "print(json.dumps({c['name']: hashlib.sha256(create_generator(**c).render(\n"
        "    np.array(labels), np.array(instances)).tobytes()).hexdigest() for c in configs}))\n"
    )
    configs = [_small(name) for name in GENERATORS]
    payload = json.dumps([configs, LABELS.tolist(), INSTANCES.tolist()])
    result = subprocess.run([sys.executable, "-c", script], input=payload, capture_output=True,
                            text=True, timeout=600, check=True)
    theirs = json.loads(result.stdout)
    ours = {c["name"]: _digest(create_generator(**c).render(LABELS, INSTANCES)) for c in configs}
    assert theirs == ours


@pytest.mark.parametrize("name", GENERATORS)
def test_pickled_generators_render_the_same_bytes(name):
    generator = create_generator(**_small(name))
    before = generator.render(LABELS, INSTANCES)
    clone = pickle.loads(pickle.dumps(generator))
    assert clone.config == generator.config
    np.testing.assert_array_equal(clone.render(LABELS, INSTANCES), before)


# Digests recorded with the reference-parity renderers (render at render_size 512, or 224 for
# exfractaldb, area-resized to image_size); a faster kernel must give the same bytes, or every
# content-addressed store and published study would silently change.
RECORDED_DIGESTS = [
    ({"name": "onepfrac", "image_size": 64, "n_points": 5000, "num_categories": 4},
     "79ca01c5b4214d074daa7f5b7d20918329ed5c19f4421e2241343849e2739958"),
    ({"name": "onepfrac", "image_size": 32, "n_points": 20000, "num_categories": 4,
      "patch": False},
     "d5a9209d1874f8537dcc898c9df4fd752842cfa112797df383e4cb70840a53d1"),
    ({"name": "onepfrac", "image_size": 224, "num_categories": 4},
     "a279a5cdd014bdcd4b94bad3054d0b9ac02ab9b46cdd65edaec02235b5fd8245"),
    ({"name": "fractaldb", "image_size": 64, "n_points": 5000, "num_categories": 3},
     "b76cd7c2bc0275c734c70b417f370c5013a49b7ee9b3aa5a3686f9f5dfbc6d10"),
    ({"name": "rcdb", "image_size": 64, "num_categories": 3},
     "df87d6efdc6bbc42c1ee900b541142610f8440f216311becfc6cf8570749ec51"),
    ({"name": "exfractaldb", "image_size": 64, "num_categories": 3},
     "379a50155d44c91f4cc95be820e3b82b4ec11e930033995ca0e6e3965f0f6c3d"),
    ({"name": "visualatom", "image_size": 64, "num_categories": 3},
     "e67d1a5471b3778b66a12d6e82662b1ea60bd31209039326939a624ea4b42627"),
]


@pytest.mark.parametrize(("config", "digest"), RECORDED_DIGESTS,
                         ids=[f"{c['name']}-{c['image_size']}px" for c, _ in RECORDED_DIGESTS])
def test_renders_match_the_recorded_bytes(config, digest):
    labels = np.repeat(np.arange(3), 4)
    instances = np.tile(np.arange(4), 3)
    generator = create_generator(**config, images_per_category=4)
    assert _digest(generator.render(labels, instances)) == digest
