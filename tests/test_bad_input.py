"""Bad input to every subcommand and to a study script: exit status 2, one line on stderr that
says what is wrong, and no Ray started (ray.init is made to fail the test if it is called)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fdsl_ray.cli import main
from fdsl_ray.study.script import study_main
from fdsl_ray.study.spec import StudySpec

TINY = ["--image-size", "16", "--n-points", "300", "--num-categories", "2",
        "--images-per-category", "2"]
PRETRAIN = ["pretrain", "onepfrac", *TINY, "--model", "cpu_micro", "--epochs", "2",
            "--warmup-epochs", "0", "--batch-size", "4"]
GENERATOR = {"name": "onepfrac", "image_size": 16, "n_points": 300, "num_categories": 2,
             "images_per_category": 2}
# {tmp}/file is a regular file, so nothing can be created under it (like /proc/x).
BLOCKED = "{tmp}/file/x"


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "file").write_text("")
    study = tmp_path / "study"
    study.mkdir()
    (study / "spec.json").write_text(json.dumps({"name": "s"}))
    pd.DataFrame({"trial_id": ["a"], "status": ["TERMINATED"]}).to_parquet(
        study / "results.parquet")
    (tmp_path / "spec.json").write_text(json.dumps({
        "name": "s", "generator": GENERATOR,
        "space": {"delta": {"type": "float", "low": 0.01, "high": 0.4}}}))
    return tmp_path


CLI_CASES = {
    "generate-nan": (["generate", "onepfrac", *TINY, "--delta", "nan", "--out", "{tmp}"],
                     "delta=nan is not allowed: must be a number in [0.0, 1.0)"),
    "generate-inf": (["generate", "onepfrac", *TINY, "--delta", "inf", "--out", "{tmp}"],
                     "delta=inf is out of range: must be in [0.0, 1.0)"),
    "generate-out": (["generate", "onepfrac", *TINY, "--out", BLOCKED],
                     "out='{tmp}/file/x' cannot be created: Not a directory"),
    "preview-out": (["preview", "onepfrac", *TINY, "--categories", "1", "--instances", "1",
                     "--out", BLOCKED + "/p.png"],
                    "--out '{tmp}/file/x' is not writable: cannot create it (Not a directory)"),
    "preview-nan": (["preview", "onepfrac", "--delta", "nan", "--out", "{tmp}/p.png"],
                    "delta=nan is not allowed"),
    "report-out": (["report", "{tmp}/study", "--out", BLOCKED + "/r"],
                   "report folder '{tmp}/file/x/r' is not writable: cannot create it "
                   "(Not a directory)"),
    "report-missing": (["report", "{tmp}/nope"], "study directory {tmp}/nope does not exist"),
    "export-missing": (["export", "{tmp}/nope", "--out", "{tmp}/png"],
                       "store {tmp}/nope does not exist"),
    "pretrain-batch": ([*PRETRAIN[:-1], "64", "--out", "{tmp}/runs"],
                       "batch_size=64 is out of range: an epoch has 4 images"),
    "pretrain-out": ([*PRETRAIN, "--out", BLOCKED],
                     "storage_path '{tmp}/file/x/onepfrac-"),
    "pretrain-json": ([*PRETRAIN, "--out", "{tmp}/runs", "--json", BLOCKED + "/r.json"],
                      "--json '{tmp}/file/x' is not writable"),
    "pretrain-store": ([*PRETRAIN, "--out", "{tmp}/runs", "--store-root", BLOCKED],
                       "out='{tmp}/file/x' cannot be created"),
    "pretrain-nan": ([*PRETRAIN, "--delta", "nan", "--out", "{tmp}/runs"],
                     "delta=nan is not allowed"),
    "pretrain-lr-nan": ([*PRETRAIN, "--lr", "nan", "--out", "{tmp}/runs"],
                        "lr=nan is not allowed: must be a number in (0, 100]"),
    "finetune-missing": (["finetune", "--checkpoint", "{tmp}/nope"],
                         "checkpoint {tmp}/nope not found"),
    "finetune-json": (["finetune", "--scratch", "--json", BLOCKED + "/r.json"],
                      "--json '{tmp}/file/x' is not writable"),
    "study-run-storage": (["study", "run", "{tmp}/spec.json", "--storage", BLOCKED],
                          "study directory '{tmp}/file/x/s' is not writable"),
    "study-run-resume": (["study", "run", "{tmp}/spec.json", "--storage", "{tmp}/new",
                          "--resume"], "resume=True but {tmp}/new/s holds no study"),
    "study-show-missing": (["study", "show", "{tmp}/nope"],
                           "{tmp}/nope is not a study directory (spec.json missing)"),
}


@pytest.mark.parametrize(("argv", "message"), list(CLI_CASES.values()), ids=list(CLI_CASES))
def test_cli_refuses_bad_input_in_one_line_before_ray(argv, message, workspace, no_ray, capsys):
    argv = [arg.replace("{tmp}", str(workspace)) for arg in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert len(error.splitlines()) == 1, error
    assert error.startswith(f"fdsl {argv[0]}: error: ")
    assert message.replace("{tmp}", str(workspace)) in error
    assert "Traceback" not in captured.err and "rendering" not in captured.out


def _spec(**changes) -> StudySpec:
    fields = dict(name="bad", generator=GENERATOR,
                  space={"delta": {"type": "categorical", "choices": [0.05, 0.1]}},
                  sampler="grid", num_samples=2,
                  pretrain={"model": "cpu_micro", "epochs": 2, "batch_size": 4,
                            "warmup_epochs": 0})
    return StudySpec(**{**fields, **changes})


def _unfinished(root) -> None:
    _spec().save(root / "bad" / "spec.json")


STUDY_CASES = {
    "generator-nan": (lambda: _spec(generator={**GENERATOR, "delta": float("nan")}), [],
                      "delta=nan is not allowed: must be a number in [0.0, 1.0)"),
    "space-nan": (lambda: _spec(space={"delta": {"type": "float", "low": 0.0,
                                                 "high": float("nan")}}), [], "nan"),
    "pretrain-lr-nan": (lambda: _spec(pretrain={"lr": float("nan")}), [], "lr=nan is not allowed"),
    "rerun-without-resume": (_spec, ["rerun"], "holds an unfinished study 'bad': pass --resume"),
    "resume-nothing": (_spec, ["--resume"], "resume=True but {tmp}/bad holds no study"),
    "storage-blocked": (_spec, ["--storage", BLOCKED],
                        "study directory '{tmp}/file/x/bad' is not writable"),
}


@pytest.mark.parametrize(("build", "flags", "message"), list(STUDY_CASES.values()),
                         ids=list(STUDY_CASES))
def test_study_script_refuses_bad_input_in_one_line_before_ray(build, flags, message, workspace,
                                                               no_ray, capsys):
    if flags == ["rerun"]:
        _unfinished(workspace)
        flags = []
    argv = ["--storage", str(workspace), *[flag.replace("{tmp}", str(workspace))
                                           for flag in flags]]
    with pytest.raises(SystemExit) as exit_info:
        study_main(lambda smoke, num_samples: build(), "bad-input", argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert len(error.splitlines()) == 1, error
    assert error.startswith("error: ")
    assert message.replace("{tmp}", str(workspace)) in error
    assert "Traceback" not in captured.err
