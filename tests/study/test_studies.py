"""The studies/*.py scripts: every spec (smoke and full scale) is valid; the quickstart runs."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from fdsl_ray.formulas import generator_settings
from fdsl_ray.study.mirror import LOCAL_COPIES
from fdsl_ray.study.script import parse_args, script_spec, study_paths, with_seeds

STUDIES = Path(__file__).resolve().parents[2] / "studies"
SCRIPTS = ["quickstart", "delta_sweep", "scaling_backwards", "joint_search"]


def load(name: str) -> dict:
    return runpy.run_path(str(STUDIES / f"{name}.py"))


@pytest.mark.parametrize("name", SCRIPTS)
@pytest.mark.parametrize("smoke", [True, False])
def test_every_study_spec_is_valid(name, smoke):
    spec = load(name)["build_spec"](smoke, None)
    assert spec.num_samples >= 2
    assert spec.generator_params() or spec.pretrain_params()
    if not smoke and name != "quickstart":
        assert spec.trial_resources()["GPU"] == 1.0
    if smoke:
        assert spec.trial_resources() == {"CPU": 4.0, "GPU": 0.0}  # fits the test Ray


@pytest.mark.parametrize("name", ["delta_sweep", "scaling_backwards"])
def test_cpu_scale_specs_run_on_a_cpu_with_replicates(name):
    spec = load(name)["build_spec"](False, None, cpu=True)
    assert spec.name.endswith("-cpu") and spec.trial_resources()["GPU"] == 0.0
    assert spec.finetune_seeds() == [0, 1, 2]
    assert spec.finetune_config().dataset == "digits"


def test_cpu_delta_sweep_and_scaling_grids():
    sweep = load("delta_sweep")["build_spec"](False, None, cpu=True)
    assert sweep.space["delta"]["choices"] == [0.0, 0.01, 0.05, 0.1, 0.2, 0.4]
    assert sweep.num_samples == 6
    scaling = load("scaling_backwards")["build_spec"](False, None, cpu=True)
    assert scaling.space["num_categories"]["choices"] == [10, 100]
    assert scaling.space["images_per_category"]["choices"] == [1, 10, 100]
    assert scaling.num_samples == 6 and scaling.pretrain_iterations is not None


def test_seed_and_scale_flags(capsys):
    module = load("quickstart")
    build = module["build_spec"]
    args = parse_args("q", [])
    assert with_seeds(script_spec(build, args), args).finetune_seeds() == [0, 1, 2]
    args = parse_args("q", ["--seeds", "5", "--pretrain-seeds", "2"])
    spec = with_seeds(script_spec(build, args), args)
    assert spec.seeds == {"finetune": [0, 1, 2, 3, 4], "pretrain": [0, 1]}
    with pytest.raises(ValueError, match="--cpu: this study has no CPU-scale version"):
        script_spec(build, parse_args("q", ["--cpu"]))
    sweep = load("delta_sweep")["build_spec"]
    with pytest.raises(ValueError, match="--cpu and --smoke are two scales"):
        script_spec(sweep, parse_args("d", ["--cpu", "--smoke"]))
    assert script_spec(sweep, parse_args("d", ["--cpu"])).name == "delta-sweep-cpu"
    main = module["study_main"]
    with pytest.raises(SystemExit) as exit_info:
        main(build, "quickstart", ["--smoke", "--seeds", "0"])
    assert exit_info.value.code == 2
    assert "--seeds=0 is out of range: must be in [1, 100]" in capsys.readouterr().err


def test_joint_search_chooses_among_every_generator_family():
    spec = load("joint_search")["build_spec"](False, None)
    choices = spec.space["generator"]["choices"]
    assert {"visualatom", "ofdb-1k", "rcdb", "exfractaldb"} <= set(choices)
    for name in choices:
        params = {"generator": name, "delta": 0.1, "sigma": 3.5, "num_categories": 10,
                  "images_per_category": 10}
        settings = generator_settings(**spec.generator_config(params))
        assert (settings.num_categories, settings.images_per_category) == (10, 10)


def test_quickstart_searches_delta_with_at_most_8_trials_on_digits():
    spec = load("quickstart")["build_spec"](False, None)
    assert list(spec.space) == ["delta"] and spec.num_samples <= 8
    assert {0.01, 0.1} <= set(spec.space["delta"]["choices"])
    assert spec.finetune_config().dataset == "digits" and spec.finetune_config().shots == 10
    assert not spec.pretrain_config({"delta": 0.1}).use_gpu


def test_num_samples_flag_overrides_and_is_checked(capsys):
    main = load("quickstart")["study_main"]
    build = load("quickstart")["build_spec"]
    assert build(True, 1).num_samples == 1
    with pytest.raises(SystemExit) as exit_info:
        main(build, "quickstart", ["--smoke", "--num-samples", "0"])
    assert exit_info.value.code == 2
    assert "--num-samples=0 is out of range" in capsys.readouterr().err


def test_storage_is_a_directory_or_a_uri_with_a_local_copy_named_after_it(s3_bucket):
    assert study_paths("/data/studies", "q") == (Path("/data/studies/q"), None)
    bucket = s3_bucket.removeprefix("s3://")
    assert study_paths(f"{s3_bucket}/studies/", "q") == (
        LOCAL_COPIES / f"s3_{bucket}_studies_q", f"{s3_bucket}/studies/q")
    with pytest.raises(ValueError, match=r"--storage 's3://no-such-bucket/studies/q' is not "
                                         r"writable: The specified bucket does not exist"):
        study_paths("s3://no-such-bucket/studies", "q")
    with pytest.raises(ValueError, match=r"'ftp://host/studies' has an unsupported scheme"):
        study_paths("ftp://host/studies", "q")


@pytest.mark.slow
def test_quickstart_smoke_runs_and_reruns_from_its_results(quickstart_smoke, capsys):
    table, out = quickstart_smoke.table, quickstart_smoke.out
    assert len(table) == 2 and table["top1"].notna().all()
    assert (table["n"] == 2).all() and table["scratch_top1"].notna().all()
    assert f"report: fdsl report {quickstart_smoke.study_dir}" in out
    assert "http://127.0.0.1:8265" in out and "optuna-dashboard sqlite:///" in out
    module = load("quickstart")
    again = module["study_main"](module["build_spec"], "quickstart", quickstart_smoke.argv)
    assert "is finished; its results" in capsys.readouterr().out
    assert again.equals(table)
