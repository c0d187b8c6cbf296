"""Two studies run once per session and read by several tests (a study costs about a minute
of Ray start-up on two cores): the quickstart's smoke version through its script, and a
two-objective NSGA-II study through `fdsl study run SPEC.yaml`."""

from __future__ import annotations

import contextlib
import io
import runpy
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fdsl_ray.cli import main
from fdsl_ray.study.spec import StudySpec

PARETO_SPEC = StudySpec(
    name="pareto",
    generator={"name": "onepfrac", "image_size": 16, "n_points": 300, "num_categories": 4,
               "images_per_category": 4},
    pretrain={"model": "cpu_micro", "epochs": 2, "batch_size": 8, "lr": 0.05,
              "warmup_epochs": 0, "num_workers": 1, "num_data_actors": 1, "max_failures": 0},
    finetune={"epochs": 1, "warmup_epochs": 0, "shots": 2, "batch_size": 8},
    space={"delta": {"type": "float", "low": 0.01, "high": 0.4, "log": True}},
    sampler="nsga2", num_samples=2, second_objective="synthetic_images")


STUDIES = Path(__file__).resolve().parents[2] / "studies"


@dataclass(frozen=True)
class CliStudy:
    spec: StudySpec
    study_dir: Path
    exit_code: int
    out: str  # what `fdsl study run` printed


@dataclass(frozen=True)
class ScriptStudy:
    spec: StudySpec
    study_dir: Path
    argv: list[str]
    table: pd.DataFrame  # what the script's study_main returned
    out: str  # what it printed


@pytest.fixture(scope="session")
def pareto_study(ray_session, tmp_path_factory) -> CliStudy:
    root = tmp_path_factory.mktemp("cli-study")
    path = root / "pareto.yaml"
    path.write_text(yaml.safe_dump(PARETO_SPEC.to_dict()))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["study", "run", str(path), "--storage", str(root)])
    return CliStudy(PARETO_SPEC, root / PARETO_SPEC.name, code, printed.getvalue())


@pytest.fixture(scope="session")
def quickstart_smoke(ray_session, tmp_path_factory) -> ScriptStudy:
    """`python studies/quickstart.py --smoke --storage ROOT`, in this process."""
    module = runpy.run_path(str(STUDIES / "quickstart.py"))
    root = tmp_path_factory.mktemp("quickstart")
    argv = ["--smoke", "--storage", str(root)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        table = module["study_main"](module["build_spec"], "quickstart", argv)
    spec = module["build_spec"](True, None)
    return ScriptStudy(spec, root / spec.name, argv, table, printed.getvalue())
