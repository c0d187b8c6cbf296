"""A two-objective study searched by NSGA-II runs to the end on a real local Ray (the session's
`pareto_study`)."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest

from fdsl_ray.study.layout import OPTUNA_DB


@pytest.mark.slow
def test_an_nsga2_study_records_both_objectives(pareto_study):
    spec, study_dir = pareto_study.spec, pareto_study.study_dir
    table = pd.read_parquet(study_dir / "results.parquet")
    assert len(table) == 2 and table["top1"].notna().all()
    assert table["param.delta"].nunique() == 2  # two draws of the sampler, not one repeated
    settings = spec.generator
    assert (table["synthetic_images"]
            == settings["num_categories"] * settings["images_per_category"]).all()
    study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{study_dir / OPTUNA_DB}")
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                optuna.study.StudyDirection.MINIMIZE]
    complete = [trial for trial in study.trials
                if trial.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2 and all(len(trial.values) == 2 for trial in complete)
    # NSGA-II drew them (it records each trial's generation), not a fallback sampler.
    assert all("NSGAIISampler:generation" in trial.system_attrs for trial in complete)
    assert sorted(trial.values[0] for trial in complete) == sorted(table["top1"])
