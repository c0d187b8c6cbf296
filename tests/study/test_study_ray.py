"""Studies on a real local Ray: results table, Optuna storage, resume, early stops, failures."""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import time
from pathlib import Path

import optuna
import pytest
from ray import tune

from fdsl_ray.study.layout import BASELINE_FILE, OPTUNA_DB, SPEC_FILE, TRIAL_RECORD
from fdsl_ray.study.run import REPLICATE_COLUMNS, results_columns, run_study
from fdsl_ray.study.spec import StudySpec

GENERATOR = {"name": "onepfrac", "image_size": 16, "n_points": 300, "num_categories": 4,
             "images_per_category": 4}
PRETRAIN = {"model": "cpu_micro", "epochs": 2, "batch_size": 8, "lr": 0.05, "warmup_epochs": 0,
            "num_workers": 1, "num_data_actors": 1, "max_failures": 0}
FINETUNE = {"epochs": 2, "warmup_epochs": 0, "shots": 2, "batch_size": 8}
DELTAS = [0.01, 0.2]


def tiny_spec(name: str, **changes) -> StudySpec:
    fields = dict(name=name, generator=GENERATOR, pretrain=PRETRAIN, finetune=FINETUNE,
                  space={"delta": {"type": "categorical", "choices": DELTAS}},
                  sampler="grid", num_samples=2)
    return StudySpec(**{**fields, **changes})


def wait_for_free_resources(ray, timeout: float = 60.0) -> tuple[float, list[str]]:
    """CPUs free and placement groups still reserved, once everything settled (or timed out)."""
    total = ray.cluster_resources()["CPU"]
    deadline = time.monotonic() + timeout
    while True:
        table = ray.util.placement_group_table()
        reserved = [pg_id for pg_id, info in table.items() if info["state"] != "REMOVED"]
        free = ray.available_resources().get("CPU", 0.0)
        if (free == total and not reserved) or time.monotonic() > deadline:
            return free, reserved
        time.sleep(0.5)


@pytest.mark.slow
def test_smoke_study_results_table_and_optuna_storage(ray_session, quickstart_smoke):
    spec, table = quickstart_smoke.spec, quickstart_smoke.table
    study_dir = quickstart_smoke.study_dir
    deltas = spec.space["delta"]["choices"]
    epochs = spec.pretrain["epochs"]
    assert list(table.columns) == results_columns(spec)
    assert list(table.columns) == [
        "trial_id", "status", "error", "param.delta", "top1", *REPLICATE_COLUMNS,
        "pretrain_loss",
        "pretrain_epochs", "wall_seconds", "pretrain_compute_seconds",
        "finetune_compute_seconds", "overhead_seconds", "overhead_fraction", "trial_dir"]
    assert len(table) == 2 and table["trial_id"].is_unique
    assert sorted(table["param.delta"]) == deltas
    assert set(table["status"]) == {"TERMINATED"} and set(table["error"]) == {""}
    assert table["top1"].between(0, 100).all()
    assert (table["pretrain_epochs"] == epochs).all()
    assert (table["pretrain_loss"] > 0).all()
    compute = table["pretrain_compute_seconds"] + table["finetune_compute_seconds"]
    assert (table["wall_seconds"] > compute).all()
    assert ((table["wall_seconds"] - compute - table["overhead_seconds"]).abs() < 1e-6).all()
    assert table["overhead_fraction"].between(0, 1).all()

    for _, row in table.iterrows():
        record = json.loads((Path(row["trial_dir"]) / TRIAL_RECORD).read_text())
        assert record["generator"] == {**spec.generator, "delta": row["param.delta"]}
        assert record["metrics"]["top1"] == row["top1"]
        assert Path(record["metrics"]["weights_path"]).is_file()
        assert len(record["history"]) == epochs
        # Two fine-tuning seeds of one pre-training: the row holds both and their statistics.
        replicates = json.loads(row["replicates"])
        assert [item["finetune_seed"] for item in replicates] == [0, 1] and row["n"] == 2
        values = [item["top1"] for item in replicates]
        assert row["top1"] == pytest.approx(statistics.mean(values))
        assert row["top1_std"] == pytest.approx(statistics.stdev(values))
        assert row["probe_top1"] == pytest.approx(
            statistics.mean(item["probe_top1"] for item in replicates))
        assert [item["top1"] for item in record["replicates"]] == values
    baseline = json.loads((study_dir / BASELINE_FILE).read_text())
    scratch = baseline["scores"]["cpu_micro"]
    assert [item["finetune_seed"] for item in scratch["replicates"]] == [0, 1]
    assert (table["scratch_top1"] == scratch["top1"]).all()
    assert (table["gain_over_scratch"] == table["top1"] - scratch["top1"]).all()
    assert (table["probe_gain_over_scratch"]
            == table["probe_top1"] - scratch["probe_top1"]).all()
    assert sorted(table["vs_best"])[0] == "best" and (table["vs_best"] == "best").sum() == 1
    assert set(table["vs_scratch"]) <= {"above", "below", "indistinguishable", "untested"}

    saved = (study_dir / "results.parquet", study_dir / "results.csv", study_dir / SPEC_FILE)
    assert all(path.is_file() for path in saved)
    assert StudySpec.load(study_dir / SPEC_FILE) == spec

    study = optuna.load_study(study_name=spec.name,
                              storage=f"sqlite:///{study_dir / OPTUNA_DB}")
    completed = [trial for trial in study.trials
                 if trial.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(trial.params["delta"] for trial in completed) == deltas
    by_delta = dict(zip(table["param.delta"], table["top1"], strict=True))
    assert {trial.params["delta"]: trial.value for trial in completed} == by_delta
    assert wait_for_free_resources(ray_session) == (ray_session.cluster_resources()["CPU"], [])


class Interrupt(tune.Stopper):
    """Presses Ctrl+C (SIGINT to the driver) once, at the first result `due` accepts.

    A stopper's stop_all would end the search for good; an interrupt is what a user's Ctrl+C
    or a job being stopped does. Tune restores the stopper on resume, so `flag` records that
    the interrupt was sent.
    """

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    def due(self, trial_id: str, result: dict) -> bool:
        raise NotImplementedError

    def __call__(self, trial_id: str, result: dict) -> bool:
        if self.due(trial_id, result) and not self.flag.exists():
            self.flag.touch()
            os.kill(os.getpid(), signal.SIGINT)
        return False

    def stop_all(self) -> bool:
        return False


class InterruptAfterFirstTrial(Interrupt):
    """When the second trial is pre-training, after the first has finished."""

    def __init__(self, flag: Path) -> None:
        super().__init__(flag)
        self.finished: set[str] = set()

    def due(self, trial_id: str, result: dict) -> bool:
        if "top1" in result:
            self.finished.add(trial_id)
        return bool(self.finished) and trial_id not in self.finished


@pytest.mark.slow
def test_interrupted_study_resumes_without_losing_finished_trials(ray_session, tmp_path):
    spec = tiny_spec("resume", sampler="tpe", num_samples=2, second_objective="compute_seconds",
                     space={"delta": {"type": "float", "low": 0.01, "high": 0.4, "log": True}},
                     points_to_evaluate=[{"delta": 0.01}, {"delta": 0.1}])
    flag = tmp_path / "interrupt"
    first = run_study(spec, study_dir=tmp_path / "study", stop=InterruptAfterFirstTrial(flag),
                      verbose=0)
    done = first.dropna(subset=["top1"])
    assert len(done) == 1

    with pytest.raises(ValueError, match="holds an unfinished study 'resume': pass --resume"):
        run_study(spec, study_dir=tmp_path / "study", verbose=0)
    other = tiny_spec("resume", num_samples=1)
    with pytest.raises(ValueError, match="holds a different study"):
        run_study(other, study_dir=tmp_path / "study", resume=True, verbose=0)

    resumed = run_study(spec, study_dir=tmp_path / "study", resume=True, verbose=0)
    assert len(resumed) == 2 and resumed["top1"].notna().all()
    assert sorted(resumed["param.delta"]) == [0.01, 0.1]
    kept = resumed.set_index("trial_id").loc[done["trial_id"].iloc[0]]
    assert kept["top1"] == done["top1"].iloc[0]
    assert kept["wall_seconds"] == done["wall_seconds"].iloc[0]  # not run again
    rerun = resumed[resumed["trial_id"] != kept.name].iloc[0]
    assert rerun["pretrain_epochs"] == PRETRAIN["epochs"]
    assert rerun["overhead_seconds"] >= 0
    # The interrupted trial's trainer group was released, or the resumed trial could not start.
    assert wait_for_free_resources(ray_session) == (ray_session.cluster_resources()["CPU"], [])
    assert "compute_seconds" in resumed.columns and (resumed["compute_seconds"] > 0).all()

    study = optuna.load_study(study_name="resume",
                              storage=f"sqlite:///{tmp_path / 'study' / OPTUNA_DB}")
    values = [trial.values for trial in study.trials
              if trial.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(value[0] for value in values) == sorted(resumed["top1"])

    again = run_study(spec, study_dir=tmp_path / "study", verbose=0)
    assert again.equals(resumed)  # equal wall_seconds too: no trial ran again


class InterruptInSecondPretraining(Interrupt):
    """When the trial reports an epoch of its second pre-training seed, after the first seed's
    fine-tuning replicates are recorded."""

    def __init__(self, flag: Path, epochs: int) -> None:
        super().__init__(flag)
        self.epochs = epochs

    def due(self, trial_id: str, result: dict) -> bool:
        return result.get("training_iteration", 0) > self.epochs


@pytest.mark.slow
@pytest.mark.long
def test_an_interrupted_trial_resumes_keeping_its_finished_replicates(ray_session, tmp_path):
    spec = tiny_spec("replicates", num_samples=1, seeds={"pretrain": 2, "finetune": 2},
                     space={"delta": {"type": "categorical", "choices": [0.1]}})
    study = tmp_path / "study"
    stopper = InterruptInSecondPretraining(tmp_path / "interrupt", PRETRAIN["epochs"])
    first = run_study(spec, study_dir=study, stop=stopper, verbose=0)
    assert first["top1"].isna().all()
    record_path = next((study / "tune").glob("*/" + TRIAL_RECORD))
    kept = json.loads(record_path.read_text())["replicates"]
    assert [(item["pretrain_seed"], item["finetune_seed"]) for item in kept] == [(0, 0), (0, 1)]
    baseline = (study / BASELINE_FILE).read_text()

    resumed = run_study(spec, study_dir=study, resume=True, verbose=0)
    record = json.loads(record_path.read_text())
    assert record["replicates"][:2] == kept  # the same records: not fine-tuned again
    assert [(item["pretrain_seed"], item["finetune_seed"]) for item in record["replicates"]] \
        == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert resumed["n"].iloc[0] == 4 and resumed["top1"].notna().all()
    assert [run["seed"] for run in record["pretrain_runs"]] == [0, 1]
    assert (study / BASELINE_FILE).read_text() == baseline  # cached, not recomputed


@pytest.mark.slow
def test_no_placement_group_or_cpu_stays_reserved_after_an_early_stop(ray_session, tmp_path):
    # Stopping every trial after its first pre-training epoch exercises the path ASHA takes
    # (the trial is stopped while its nested trainer runs), deterministically.
    spec = tiny_spec("stopped", num_samples=1,
                     space={"delta": {"type": "categorical", "choices": [0.1]}})
    table = run_study(spec, study_dir=tmp_path / "stopped", stop={"training_iteration": 1},
                      verbose=0)
    assert len(table) == 1 and table["top1"].isna().all()
    assert (table["pretrain_epochs"] == 1).all()
    assert wait_for_free_resources(ray_session) == (ray_session.cluster_resources()["CPU"], [])


@pytest.mark.slow
@pytest.mark.long
def test_an_asha_study_ends_with_no_placement_group_or_cpu_reserved(ray_session, tmp_path):
    asha = tiny_spec("asha", asha=True, asha_grace_period=1, sampler="tpe", num_samples=2,
                     space={"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}})
    table = run_study(asha, study_dir=tmp_path / "asha", verbose=0)
    assert len(table) == 2 and set(table["status"]) == {"TERMINATED"}
    assert wait_for_free_resources(ray_session) == (ray_session.cluster_resources()["CPU"], [])


@pytest.mark.slow
def test_a_failing_trial_shows_its_error_in_the_results(ray_session, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the store should be")
    spec = tiny_spec("failing", num_samples=1, max_failures=1, data_store=str(blocked / "store"))
    table = run_study(spec, study_dir=tmp_path / "study", verbose=0)
    assert list(table["status"]) == ["ERROR"]
    assert table["error"].iloc[0] != "" and math.isnan(table["top1"].iloc[0])
    attempts = list((tmp_path / "study" / "tune").glob("*/error.txt"))
    assert attempts, "Tune records the trial's error beside it"
    assert wait_for_free_resources(ray_session) == (ray_session.cluster_resources()["CPU"], [])


def test_refuses_a_study_the_cluster_cannot_hold_before_any_trial(ray_session, tmp_path):
    spec = tiny_spec("too-big", pretrain={**PRETRAIN, "num_workers": 8})
    with pytest.raises(ValueError, match="each trial needs 11 CPU .* the cluster has 4"):
        run_study(spec, study_dir=tmp_path, verbose=0)
    assert not (tmp_path / "tune").exists()


@pytest.mark.slow
@pytest.mark.long
def test_a_study_in_an_s3_bucket_resumes_on_a_new_head_node(ray_session, s3_bucket, tmp_path,
                                                            monkeypatch):
    """Trials, pre-training runs and the study files live in the bucket; the local study
    directory is only a copy, so losing it (a new head node) loses no finished trial."""
    import shutil

    from fdsl_ray import storage
    from fdsl_ray.cli import main
    from fdsl_ray.study import mirror

    spec = tiny_spec("remote", sampler="tpe", num_samples=2,
                     space={"delta": {"type": "float", "low": 0.01, "high": 0.4, "log": True}},
                     points_to_evaluate=[{"delta": 0.01}, {"delta": 0.1}])
    remote, local = f"{s3_bucket}/studies/remote", tmp_path / "copy"
    first = run_study(spec, study_dir=local, storage_path=remote,
                      stop=InterruptAfterFirstTrial(tmp_path / "interrupt"), verbose=0)
    done = first.dropna(subset=["top1"])
    assert len(done) == 1
    assert set(storage.list_names(remote)) >= {SPEC_FILE, OPTUNA_DB, "results.parquet",
                                               "state.json", "tune", "pretrain"}

    shutil.rmtree(local)
    resumed = run_study(spec, study_dir=local, storage_path=remote, resume=True, verbose=0)
    assert len(resumed) == 2 and resumed["top1"].notna().all()
    kept = resumed.set_index("trial_id").loc[done["trial_id"].iloc[0]]
    assert kept["wall_seconds"] == done["wall_seconds"].iloc[0]  # not run again
    for _, row in resumed.iterrows():
        assert row["trial_dir"].startswith(f"{remote}/tune/")
        record = json.loads(storage.read_text(f"{row['trial_dir']}/{TRIAL_RECORD}"))
        assert record["metrics"]["top1"] == row["top1"]
        assert storage.is_file(record["metrics"]["weights_path"])
    study = optuna.load_study(study_name="remote", storage=f"sqlite:///{local / OPTUNA_DB}")
    completed = [trial.value for trial in study.trials
                 if trial.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(completed) == sorted(resumed["top1"])

    shutil.rmtree(local)
    again = run_study(spec, study_dir=local, storage_path=remote, verbose=0)
    assert again.equals(resumed)

    monkeypatch.setattr(mirror, "LOCAL_COPIES", tmp_path / "copies")
    assert main(["report", remote]) == 0
    report = (mirror.local_copy_dir(remote) / "report" / "report.md").read_text()
    best = resumed.loc[resumed["top1"].idxmax()]
    assert f"Trial directory (config, metrics, checkpoint): `{best['trial_dir']}`" in report
    assert "Generator configuration of this trial:" in report


@pytest.mark.slow
def test_a_trial_whose_pretraining_diverges_is_recorded_as_failed(ray_session, tmp_path):
    """The trial's error is the pre-training's message, it has no top1, and Optuna has it once,
    as failed: a diverged run is never a score."""
    spec = tiny_spec("diverging", num_samples=1, max_failures=0,
                     space={"delta": {"type": "categorical", "choices": [0.1]}},
                     pretrain={**PRETRAIN, "epochs": 6, "lr": 100.0, "weight_decay": 10.0})
    table = run_study(spec, study_dir=tmp_path, verbose=0)
    assert list(table["status"]) == ["ERROR"] and math.isnan(table["top1"].iloc[0])
    error = table["error"].iloc[0]
    assert "pre-training loss is" in error and "the run diverged" in error, error
    study = optuna.load_study(study_name="diverging",
                              storage=f"sqlite:///{tmp_path / OPTUNA_DB}")
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.FAIL]
