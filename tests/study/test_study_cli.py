"""`fdsl study run SPEC` and `fdsl study show DIR`: specs refused before Ray, tables shown."""

from __future__ import annotations

import json
import re
import runpy
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import ray
import yaml

from fdsl_ray.cli import main
from fdsl_ray.study.layout import STATE_FILE
from fdsl_ray.study.run import results_columns, write_results
from fdsl_ray.study.spec import StudySpec

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def smoke_spec() -> StudySpec:
    return runpy.run_path(str(STUDIES / "quickstart.py"))["build_spec"](True, None)


def write_spec(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data) if path.suffix != ".json" else json.dumps(data))
    return path


def refusal(argv: list[str], capsys) -> str:
    """The exit status and the one line of a refusal; run it with the `no_ray` fixture, which
    fails the test if Ray is started or joined first."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_spec_file_is_the_study_spec_a_script_builds(tmp_path, suffix):
    from fdsl_ray.cli.study import load_spec

    spec = smoke_spec()
    assert load_spec(write_spec(tmp_path / f"s{suffix}", spec.to_dict())) == spec
    short = {"name": "mini", "generator": {"name": "onepfrac"},
             "space": {"delta": {"type": "float", "low": 0.01, "high": 0.4}}}
    assert load_spec(write_spec(tmp_path / f"mini{suffix}", short)) == StudySpec(**short)


@pytest.mark.parametrize(("content", "message"), [
    ("name: [unclosed", r"is not valid YAML: while parsing a flow sequence"),
    ("- a\n- b\n", r"must hold a mapping of StudySpec fields, got list"),
    ("name: x\ncolour: red\n", r"unknown study key\(s\) colour: allowed keys are name, generator"),
    ("name: x\ngenerator: {name: onepfrac}\nspace: {}\n", r"space is empty"),
    ("name: x\ngenerator: {name: onepfrac}\nspace: {delta: {type: float, low: 0.01, high: "
     "0.4}}\nnum_samples: 0\n", r"num_samples=0 is out of range"),
])
def test_a_bad_spec_is_refused_in_one_line_before_ray(tmp_path, capsys, no_ray, content,
                                                       message):
    path = tmp_path / "spec.yaml"
    path.write_text(content)
    line = refusal(["study", "run", str(path), "--storage", str(tmp_path)], capsys)
    assert line.startswith("fdsl study: error: ")
    assert re.search(message, line), line
    assert not (tmp_path / "x").exists()


def test_a_missing_or_misnamed_spec_file_and_a_bad_flag_are_refused(tmp_path, capsys, no_ray):
    missing = tmp_path / "none.yaml"
    assert refusal(["study", "run", str(missing)], capsys) == (
        f"fdsl study: error: spec {missing} cannot be read: No such file or directory")
    text = write_spec(tmp_path / "spec.txt", smoke_spec().to_dict())
    assert refusal(["study", "run", str(text)], capsys) == (
        f"fdsl study: error: spec {text} must be a .json, .yaml, .yml file")
    good = write_spec(tmp_path / "spec.yaml", smoke_spec().to_dict())
    assert refusal(["study", "run", str(good), "--num-samples", "0"], capsys) == (
        "fdsl study: error: --num-samples=0 is out of range: must be >= 1")


def finished_study(root: Path) -> Path:
    """A study directory as run_study leaves it (spec, results, state), from its own writers."""
    spec = smoke_spec()
    study_dir = root / spec.name
    spec.save(study_dir / "spec.json")
    rows = [{"trial_id": "a0000001", "status": "TERMINATED", "error": "", "param.delta": 0.01,
             "top1": 12.5, "pretrain_loss": 1.38, "wall_seconds": 50.0,
             "overhead_fraction": 0.2},
            {"trial_id": "a0000002", "status": "ERROR", "error": "ValueError: it broke",
             "param.delta": 0.1, "top1": float("nan")}]
    write_results(pd.DataFrame(rows, columns=results_columns(spec)), study_dir)
    (study_dir / STATE_FILE).write_text(json.dumps({"finished": True, "trials": 2}))
    return study_dir


def test_show_prints_the_table_the_best_trial_and_the_failures(tmp_path, capsys):
    study_dir = finished_study(tmp_path)
    assert main(["study", "show", str(study_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "study quickstart-smoke: finished, 2 of 2 trials"
    header = out[1].split()
    assert header[:4] == ["trial_id", "status", "param.delta", "top1"]
    assert {"top1_std", "n", "pretrain_loss", "overhead_fraction"} <= set(header)
    assert out[2].split()[:4] == ["a0000001", "TERMINATED", "0.01", "12.5"]
    assert "trial a0000002 failed: ValueError: it broke" in out
    assert "best: trial a0000001 top1=12.50 {'delta': 0.01}" in out
    (study_dir / STATE_FILE).unlink()
    assert main(["study", "show", str(study_dir)]) == 0
    assert capsys.readouterr().out.startswith(
        "study quickstart-smoke: unfinished (resume it with --resume), 2 of 2 trials")


def test_show_refuses_what_is_not_a_finished_study(tmp_path, capsys, no_ray):
    assert refusal(["study", "show", str(tmp_path)], capsys) == (
        f"fdsl study: error: {tmp_path} is not a study directory (spec.json missing)")
    smoke_spec().save(tmp_path / "spec.json")
    assert refusal(["study", "show", str(tmp_path)], capsys) == (
        f"fdsl study: error: {tmp_path} has no results yet (results.parquet missing)")


def dashboard_get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_a_spec_file_study_runs_shows_and_appears_in_the_dashboard(pareto_study, ray_dashboard,
                                                                    capsys):
    """What README's console and dashboard sections promise, on the session's study, run by
    `fdsl study run SPEC.yaml`."""
    spec, out = pareto_study.spec, pareto_study.out
    assert pareto_study.exit_code == 0
    table = pd.read_parquet(pareto_study.study_dir / "results.parquet")
    assert len(table) == spec.num_samples and table["top1"].notna().all()
    for trial_id in table["trial_id"]:
        assert f"trial {trial_id} started: delta=" in out
        assert f"trial {trial_id} epoch 2/2: loss " in out
        assert re.search(rf"trial {trial_id} finished: top1 \d+\.\d\d", out)
    for chatter in ("Reporting training result", "Checkpoint successfully created",
                    "exclude_resources", "Running Dataset"):
        assert chatter not in out
    assert len(out.splitlines()) < 60

    assert main(["study", "show", str(pareto_study.study_dir)]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"study {spec.name}: finished, 2 of 2 trials\n")
    assert shown.split("\n", 1)[1] in out  # the table the study printed when it ended

    jobs = dashboard_get(f"{ray_dashboard}/api/jobs/")
    this_job = ray.get_runtime_context().get_job_id()
    assert any(job["job_id"] == this_job and job["status"] == "RUNNING" for job in jobs)
    runs = dashboard_get(f"{ray_dashboard}/api/train/v2/runs/v1")["train_runs"]
    finished = {run["name"]: run["status"] for run in runs}
    for trial_id in table["trial_id"]:
        assert finished[trial_id] == "FINISHED"
    actors = dashboard_get(f"{ray_dashboard}/api/v0/actors?limit=10000&detail=false")
    classes = {actor["class_name"] for actor in actors["data"]["result"]["result"]}
    assert {"ImplicitFunc", "TrainController", "RayTrainWorker"} <= classes, classes
    assert any("MapWorker" in name for name in classes), classes
