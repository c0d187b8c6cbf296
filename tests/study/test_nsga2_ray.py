"""A two-objective study searched by NSGA-II runs to the end on a real local Ray."""

from __future__ import annotations

import optuna
import pytest

from fdsl_ray.study.layout import OPTUNA_DB
from fdsl_ray.study.run import run_study
from fdsl_ray.study.spec import StudySpec


@pytest.mark.slow
def test_an_nsga2_study_records_both_objectives(ray_session, tmp_path):
    spec = StudySpec(
        name="pareto", sampler="nsga2", num_samples=2, second_objective="synthetic_images",
        generator={"name": "onepfrac", "image_size": 16, "n_points": 300,
                   "images_per_category": 4},
        space={"num_categories": {"type": "int", "low": 2, "high": 4}},
        pretrain={"model": "cpu_micro", "epochs": 1, "batch_size": 8, "lr": 0.05,
                  "warmup_epochs": 0, "num_workers": 1, "num_data_actors": 1,
                  "max_failures": 0},
        finetune={"epochs": 1, "warmup_epochs": 0, "shots": 2, "batch_size": 8})
    table = run_study(spec, study_dir=tmp_path, verbose=0)
    assert len(table) == 2 and table["top1"].notna().all()
    assert sorted(table["synthetic_images"]) == sorted(
        4 * categories for categories in table["param.num_categories"])
    study = optuna.load_study(study_name="pareto", storage=f"sqlite:///{tmp_path / OPTUNA_DB}")
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                optuna.study.StudyDirection.MINIMIZE]
    complete = [trial for trial in study.trials
                if trial.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2 and all(len(trial.values) == 2 for trial in complete)
