"""StudySpec: what a study may search, refused before any trial with messages naming the field."""

from __future__ import annotations

import optuna
import pytest

from fdsl_ray.study.search import make_sampler
from fdsl_ray.study.spec import DATA_TASK_CPUS, StudySpec

BASE = {"name": "onepfrac", "num_categories": 4, "images_per_category": 2, "image_size": 16,
        "n_points": 200}


def make(**changes) -> StudySpec:
    fields = dict(name="s", generator=BASE,
                  space={"delta": {"type": "float", "low": 0.01, "high": 0.4, "log": True}})
    return StudySpec(**{**fields, **changes})


def test_round_trips_through_json(tmp_path):
    spec = make(points_to_evaluate=[{"delta": 0.1}], second_objective="synthetic_images",
                pretrain={"epochs": 2, "crop_scale": (0.5, 1.0)}, finetune={"epochs": 2,
                                                                          "warmup_epochs": 0})
    spec.save(tmp_path / "spec.json")
    assert StudySpec.load(tmp_path / "spec.json") == StudySpec.from_dict(spec.to_dict())
    assert StudySpec.load(tmp_path / "spec.json").to_dict()["pretrain"]["epochs"] == 2


def test_routes_params_to_generator_and_pretrain():
    spec = make(space={"delta": {"type": "categorical", "choices": [0.01, 0.1]},
                       "epochs": {"type": "int", "low": 2, "high": 3},
                       "num_categories": {"type": "int", "low": 2, "high": 8}})
    assert spec.generator_params() == ["delta", "num_categories"]
    assert spec.pretrain_params() == ["epochs"]
    params = {"delta": 0.01, "epochs": 3, "num_categories": 5}
    assert spec.generator_config(params) == {**BASE, "delta": 0.01, "num_categories": 5}
    assert spec.pretrain_config(params).epochs == 3


def test_joint_search_keeps_only_the_chosen_generators_keys():
    spec = make(space={"generator": {"type": "categorical", "choices": ["onepfrac", "rcdb"]},
                       "delta": {"type": "float", "low": 0.01, "high": 0.4}})
    rcdb = spec.generator_config({"generator": "rcdb", "delta": 0.2})
    assert rcdb["name"] == "rcdb" and "delta" not in rcdb
    assert rcdb["num_categories"] == 4
    assert spec.generator_config({"generator": "onepfrac", "delta": 0.2})["delta"] == 0.2


@pytest.mark.parametrize("changes, message", [
    ({"space": {}}, "space is empty"),
    ({"space": {"colour": {"type": "float", "low": 0, "high": 1}}}, "unknown parameter(s) colour"),
    ({"space": {"delta": {"type": "float", "low": 0.4, "high": 0.1}}}, "low=0.4 >= high=0.1"),
    ({"space": {"delta": {"type": "float", "low": 0.1, "high": 0.1}}}, "the range is empty"),
    ({"space": {"delta": {"type": "float", "low": 0.1, "high": 1.5}}}, "delta=1.5 is out of range"),
    ({"space": {"n_maps": {"type": "int", "low": 0, "high": 3}}}, "n_maps=0 is out of range"),
    ({"space": {"delta": {"type": "categorical", "choices": []}}}, "must be a non-empty list"),
    ({"space": {"delta": {"type": "normal", "low": 0, "high": 1}}}, "space.delta.type='normal'"),
    ({"space": {"delta": {"type": "float", "low": 0.0, "high": 0.2, "log": True}}},
     "log=true needs low > 0"),
    ({"space": {"epochs": {"type": "int", "low": 0, "high": 2}}}, "epochs=0 is out of range"),
    ({"space": {"generator": {"type": "categorical", "choices": ["onepfrac", "nope"]}}},
     "generator='nope' is unknown"),
    ({"sampler": "grid"}, "sampler='grid' needs categorical parameters only: delta"),
    ({"sampler": "grid", "num_samples": 3,
      "space": {"delta": {"type": "categorical", "choices": [0.01, 0.1]}}},
     "num_samples=3 is out of range: the grid has 2 points"),
    ({"sampler": "random"}, "sampler='random' is not allowed"),
    ({"points_to_evaluate": [{"delta": 0.9}]}, "points_to_evaluate[0]: delta=0.9 is outside"),
    ({"points_to_evaluate": [{"sigma": 3.0}]}, "points_to_evaluate[0]: sigma not in the space"),
    ({"second_objective": "memory"}, "second_objective='memory' is not allowed"),
    ({"generator": {"num_categories": 4}}, "must be a config dict with a 'name'"),
    ({"generator": {**BASE, "colour": 1}}, "config key(s) colour"),
    ({"pretrain": {"epochs": 0}}, "epochs=0 is out of range"),
    ({"pretrain": {"speed": 1}}, "unknown pretrain key(s) speed"),
    ({"finetune": {"dataset": "mnist"}}, "dataset='mnist' is not allowed"),
    ({"asha": True, "asha_grace_period": 5, "pretrain": {"epochs": 3}},
     "asha_grace_period=5 is out of range"),
    ({"name": "a b"}, "name='a b' must be"),
    ({"storage": "optuna.db"}, "must be an SQLAlchemy URL"),
])
def test_refuses_bad_specs(changes, message):
    with pytest.raises(ValueError) as error:
        make(**changes)
    assert message in str(error.value)


def test_trial_resources_count_nested_work():
    spec = make(trial_cpus=1.0, pretrain={"num_workers": 2, "cpus_per_worker": 1.0,
                                          "num_data_actors": 3, "cpus_per_data_actor": 0.5,
                                          "batch_size": 64})
    assert spec.trial_resources() == {"CPU": 1 + 2 + 1.5 + DATA_TASK_CPUS, "GPU": 0.0}
    gpu = make(pretrain={"use_gpu": True, "num_workers": 2, "batch_size": 64})
    assert gpu.trial_resources()["GPU"] == 2.0


def test_concurrency_is_capped_by_the_cluster():
    spec = make(num_samples=8)  # each trial: 1 trial + 1 worker + 1 data actor + 1 data task
    assert spec.concurrency({"CPU": 4}) == 1
    assert spec.concurrency({"CPU": 13}) == 3
    assert make(num_samples=8, max_concurrent=2).concurrency({"CPU": 16}) == 2
    assert make(num_samples=8, max_concurrent=9).concurrency({"CPU": 8}) == 2
    assert make(num_samples=2).concurrency({"CPU": 64}) == 2


def test_refuses_resources_the_cluster_cannot_provide():
    with pytest.raises(ValueError, match="each trial needs 4 CPU .* the cluster has 2"):
        make().concurrency({"CPU": 2})
    gpu = make(pretrain={"use_gpu": True})
    with pytest.raises(ValueError, match="each trial needs 1 GPU .* the cluster has 0"):
        gpu.concurrency({"CPU": 64})


def test_refuses_a_node_label_no_node_declares():
    labelled = make(pretrain={"worker_resource": "train", "data_actor_resource": "render"})
    assert labelled.node_labels() == {"worker_resource": "train", "data_actor_resource": "render"}
    assert labelled.concurrency({"CPU": 8, "train": 1, "render": 1}) == 2
    with pytest.raises(ValueError, match="pretrain.data_actor_resource='render': no node of the "
                                         "cluster declares the resource 'render'"):
        labelled.concurrency({"CPU": 8, "train": 1})
    assert make().node_labels() == {"worker_resource": None, "data_actor_resource": None}


def test_searched_worker_count_sizes_the_trial_at_its_largest():
    spec = make(space={"num_workers": {"type": "categorical", "choices": [1, 4]}},
                pretrain={"batch_size": 64})
    assert spec.trial_resources()["CPU"] == 1 + 4 + 1 + DATA_TASK_CPUS


def test_samplers():
    grid = make(sampler="grid", num_samples=2,
                space={"delta": {"type": "categorical", "choices": [0.01, 0.1]}})
    assert isinstance(make_sampler(grid), optuna.samplers.GridSampler)
    assert type(make_sampler(make(sampler="nsga2"))).__name__ == "NSGAIISampler"
    assert type(make_sampler(make())).__name__ == "TPESampler"


def test_a_data_set_smaller_than_a_batch_trains_on_whole_set_batches():
    spec = make(space={"num_categories": {"type": "int", "low": 1, "high": 1000, "log": True}},
                pretrain={"batch_size": 64, "num_workers": 2})
    assert spec.pretrain_config({"num_categories": 3}).batch_size == 6  # 3 x 2 images
    assert spec.pretrain_config({"num_categories": 1000}).batch_size == 64
    assert spec.synthetic_images({"num_categories": 3}) == 6
    with pytest.raises(ValueError, match="fewer images than num_workers=4"):
        make(generator={**BASE, "images_per_category": 1},
             space={"num_categories": {"type": "int", "low": 1, "high": 8}},
             pretrain={"num_workers": 4})


def test_a_budget_in_images_sets_epochs_from_the_data_set_size():
    spec = make(space={"images_per_category": {"type": "int", "low": 1, "high": 100}},
                pretrain_images=1000, pretrain={"warmup_epochs": 1})
    assert spec.pretrain_config({"images_per_category": 100}).epochs == 3  # 1000 / 400
    assert spec.pretrain_config({"images_per_category": 1}).epochs == 250
    assert spec.pretrain_config({"images_per_category": 250}).epochs == 2  # warm-up + 1
    with pytest.raises(ValueError, match="pretrain_images and a searched 'epochs'"):
        make(space={"epochs": {"type": "int", "low": 2, "high": 4}}, pretrain_images=10)


def test_a_published_preset_is_a_generator_name():
    spec = make(generator={"name": "fractaldb-1k", "num_categories": 4, "image_size": 16,
                           "images_per_category": 2},
                space={"num_categories": {"type": "int", "low": 2, "high": 4}})
    assert spec.synthetic_images({"num_categories": 3}) == 6
    assert spec.generator_params() == ["num_categories"]
    with pytest.raises(ValueError, match=r"unknown fractaldb-1k config key\(s\) delta"):
        make(generator={"name": "fractaldb-1k", "delta": 0.1},
             space={"num_categories": {"type": "int", "low": 2, "high": 4}})
    joint = make(space={"generator": {"type": "categorical", "choices": ["onepfrac", "1p-frac"]},
                        "delta": {"type": "float", "low": 0.01, "high": 0.4}})
    assert joint.generator_names == ["onepfrac", "1p-frac"]
