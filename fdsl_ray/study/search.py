"""The study's searcher (Optuna through Tune) and its optional early stopping (ASHA)."""

from __future__ import annotations

from pathlib import Path

import optuna
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from fdsl_ray.study import space as spaces
from fdsl_ray.study.layout import OPTUNA_DB
from fdsl_ray.study.spec import StudySpec

# ASHA ranks trials on the pre-training epochs that TuneReportCallback forwards; the
# objective (downstream top-1) exists only once a trial has finished.
ASHA_METRIC = "loss"
ASHA_MODE = "min"
ASHA_TIME_ATTR = "training_iteration"


class StudySearch(OptunaSearch):
    """OptunaSearch that lets intermediate pre-training results through.

    OptunaSearch reads the objective from every result, but a trial's pre-training epochs
    carry no downstream top-1 yet; those results are skipped (Optuna's pruner is off in Tune).
    """

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        if all(metric in result for metric in metrics):
            super().on_trial_result(trial_id, result)


class TuneGridSampler(optuna.samplers.GridSampler):
    """GridSampler without its study.stop() once the grid is used up (optuna _grid.py,
    after_trial): stop() ends an optuna.optimize loop, and under Tune's ask-and-tell there is
    none, so it raises and Ray's OptunaSearch logs a warning for a study that ends normally
    (Tune stops at num_samples, which a grid spec cannot exceed)."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


def storage_url(spec: StudySpec, study_dir: str | Path) -> str:
    """The Optuna storage: spec.storage, or a sqlite file in the study directory."""
    if spec.storage:
        return spec.storage
    return f"sqlite:///{Path(study_dir).resolve() / OPTUNA_DB}"


def make_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    if spec.sampler == "grid":
        return TuneGridSampler(spaces.grid(spec.space), seed=spec.seed)
    if spec.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=spec.seed)
    return optuna.samplers.TPESampler(seed=spec.seed, multivariate=len(spec.space) > 1)


def make_searcher(spec: StudySpec, study_dir: str | Path, max_concurrent: int
                  ) -> ConcurrencyLimiter:
    metrics = [metric for metric, _ in spec.objectives]
    modes = [mode for _, mode in spec.objectives]
    searcher = StudySearch(
        space={name: spaces.to_optuna(spec_) for name, spec_ in spec.space.items()},
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        points_to_evaluate=[dict(point) for point in spec.points_to_evaluate] or None,
        sampler=make_sampler(spec),
        study_name=spec.name,
        storage=optuna.storages.RDBStorage(storage_url(spec, study_dir)),
    )
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def make_scheduler(spec: StudySpec) -> TrialScheduler:
    if not spec.asha:
        return FIFOScheduler()
    max_epochs = max(spec.pretrain_config(params).epochs for params in spec.corner_params())
    return ASHAScheduler(metric=ASHA_METRIC, mode=ASHA_MODE, time_attr=ASHA_TIME_ATTR,
                         grace_period=spec.asha_grace_period, max_t=max(max_epochs, 1) + 1,
                         reduction_factor=2)
