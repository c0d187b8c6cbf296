"""fdsl report on hand-built study directories: a real Optuna sqlite study and results table."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shlex
from pathlib import Path

import optuna
import pandas as pd
import PIL.Image
import pytest

from fdsl_ray.cli import main
from fdsl_ray.study.layout import SPEC_FILE
from fdsl_ray.study.plots import category_order
from fdsl_ray.study.report import pareto_mask, write_report
from fdsl_ray.study.run import write_results
from fdsl_ray.study.search import storage_url
from fdsl_ray.study.spec import StudySpec

SPACE = {
    "delta": {"type": "float", "low": 0.01, "high": 0.4, "log": True},
    "num_categories": {"type": "int", "low": 2, "high": 10, "log": False},
    "generator": {"type": "categorical", "choices": ["onepfrac", "fractaldb"]},
}
GENERATOR = {"name": "onepfrac", "image_size": 32, "n_points": 1000, "seed": 0}
TRIALS = [  # delta, num_categories, generator, top1, synthetic_images
    (0.01, 2, "onepfrac", 31.0, 20),
    (0.05, 4, "fractaldb", 55.5, 40),
    (0.1, 8, "onepfrac", 78.25, 80),
    (0.2, 10, "fractaldb", 72.0, 100),
    (0.4, 6, "onepfrac", 60.0, 120),
]


def _distributions() -> dict[str, optuna.distributions.BaseDistribution]:
    return {
        "delta": optuna.distributions.FloatDistribution(0.01, 0.4, log=True),
        "num_categories": optuna.distributions.IntDistribution(2, 10),
        "generator": optuna.distributions.CategoricalDistribution(["onepfrac", "fractaldb"]),
    }


def make_study_dir(root: Path, *, second_metric: str | None = None, trials=TRIALS,
                   failed: bool = True) -> Path:
    """What run_study leaves behind, written by the code that writes it: StudySpec.save,
    the Optuna storage at storage_url, write_results."""
    spec = StudySpec(name="hand_made", generator=GENERATOR, space=SPACE,
                     second_objective=second_metric)
    directory = root / spec.name
    spec.save(directory / SPEC_FILE)
    directions = ["maximize"] + (["minimize"] if second_metric else [])
    study = optuna.create_study(study_name=spec.name, storage=storage_url(spec, directory),
                                directions=directions)
    rows = []
    for index, (delta, categories, generator, top1, images) in enumerate(trials):
        params = {"delta": delta, "num_categories": categories, "generator": generator}
        values = [top1] + ([images] if second_metric else [])
        study.add_trial(optuna.trial.create_trial(params=params, distributions=_distributions(),
                                                  values=values))
        wall, pretrain, finetune = 100.0 + index, 60.0, 30.0
        rows.append({"trial_id": f"t{index:05d}", "status": "TERMINATED", "error": "",
                     "param.delta": delta, "param.num_categories": categories,
                     "param.generator": generator, "top1": top1, "synthetic_images": images,
                     "pretrain_loss": 1.5, "pretrain_epochs": 3, "wall_seconds": wall,
                     "pretrain_compute_seconds": pretrain, "finetune_compute_seconds": finetune,
                     "overhead_seconds": wall - pretrain - finetune,
                     "overhead_fraction": (wall - pretrain - finetune) / wall,
                     "trial_dir": str(directory / f"trial_t{index:05d}")})
    if failed:
        rows.append({"trial_id": "tbroken", "status": "ERROR",
                     "error": "RuntimeError: worker died | exit code 1", "param.delta": 0.3,
                     "param.num_categories": 3, "param.generator": "fractaldb",
                     "top1": float("nan"), "trial_dir": str(directory / "trial_tbroken")})
    write_results(pd.DataFrame(rows), directory)
    return directory


def test_report_holds_best_config_plots_table_failures_and_overhead(tmp_path):
    study_dir = make_study_dir(tmp_path)
    report = write_report(study_dir)
    assert report == study_dir / "report" / "report.md"
    text = report.read_text()

    best = text.split("## Best configuration")[1].split("## ")[0]
    assert "Trial `t00002`: top1 = 78.25" in best
    assert json.loads(best.split("```json")[1].split("```")[0]) == {
        "delta": 0.1, "num_categories": 8, "generator": "onepfrac"}
    assert json.loads(best.split("```json")[2].split("```")[0]) == GENERATOR

    for param in SPACE:
        png = report.parent / f"objective_vs_{param}.png"
        assert png.read_bytes().startswith(b"\x89PNG")
        assert f"]({png.name})" in text
    assert (report.parent / "param_importances.png").is_file()
    importances = text.split("## Parameter importances")[1].split("## ")[0]
    assert all(f"| {param} |" in importances for param in SPACE)
    assert "Pareto" not in text  # one objective

    trials = text.split("## All trials")[1].split("## ")[0].strip().splitlines()
    assert len(trials) == 2 + len(TRIALS) + 1
    assert trials[2].startswith("| t00002 | TERMINATED | 0.1 | onepfrac | 8 | 78.25 |")
    assert trials[-1].startswith("| tbroken | ERROR |")

    failures = text.split("## Failed trials")[1]
    assert "### Trial `tbroken`" in failures
    assert "RuntimeError: worker died | exit code 1" in failures

    overhead = text.split("## Ray overhead")[1].split("## ")[0]
    fractions = [(100.0 + i - 90.0) / (100.0 + i) for i in range(len(TRIALS))]
    assert f"{100 * sum(fractions) / len(fractions):.1f} % of trial wall time" in overhead
    assert "above the 10 % target" in overhead
    assert not list(report.parent.glob("*.partial"))


def test_best_config_shows_the_trials_own_generator_and_early_stops(tmp_path):
    study_dir = make_study_dir(tmp_path)
    trial_dir = study_dir / "trial_t00002"
    trial_dir.mkdir()
    generator = {**GENERATOR, "delta": 0.1, "num_categories": 8}
    (trial_dir / "trial.json").write_text(json.dumps({"generator": generator}))
    table = pd.read_parquet(study_dir / "results.parquet")
    stopped = {**table.iloc[0].to_dict(), "trial_id": "tstopped", "top1": float("nan")}
    pd.concat([table, pd.DataFrame([stopped])]).to_parquet(study_dir / "results.parquet")

    text = write_report(study_dir).read_text()
    best = text.split("## Best configuration")[1].split("## ")[0]
    assert "Generator configuration of this trial:" in best
    assert json.loads(best.split("```json")[2].split("```")[0]) == generator
    assert "7 trials, 5 completed, 1 failed, 1 stopped early without top1." in text


def test_two_objectives_draw_the_pareto_front(tmp_path):
    study_dir = make_study_dir(tmp_path, second_metric="synthetic_images", failed=False)
    report = write_report(study_dir, tmp_path / "elsewhere")
    assert report.parent == tmp_path / "elsewhere"
    text = report.read_text()
    assert (report.parent / "pareto_front.png").read_bytes().startswith(b"\x89PNG")
    pareto = text.split("## Pareto front")[1].split("\n## ")[0]
    # Higher top1 for more images until t00002; t00003 and t00004 use more images and score less.
    assert "3 of 5 completed trials are on the front" in pareto
    front_ids = [line.split("|")[1].strip() for line in pareto.splitlines()
                 if line.startswith("| t0")]
    assert front_ids == ["t00000", "t00001", "t00002"]
    assert "None." in text.split("## Failed trials")[1]
    assert (report.parent / "param_importances.png").is_file()


def test_importances_are_skipped_with_a_note_for_a_single_trial(tmp_path):
    study_dir = make_study_dir(tmp_path, trials=TRIALS[:1], failed=False)
    text = write_report(study_dir).read_text()
    assert "Skipped: needs at least 2 completed trials in Optuna, found 1." in text
    assert not (study_dir / "report" / "param_importances.png").exists()


def test_importances_are_skipped_when_every_param_took_one_value(tmp_path):
    same = [TRIALS[0], (*TRIALS[0][:3], 40.0, 20)]
    text = write_report(make_study_dir(tmp_path, trials=same, failed=False)).read_text()
    assert "Skipped: every searched parameter took a single value" in text


def test_categories_are_plotted_in_the_spaces_order():
    assert category_order([1000, 5, 10, 5, 1], [1, 5, 10, 100, 1000]) == ["1", "5", "10", "1000"]
    assert category_order(["b", "zz", "a"], ["b", "a"]) == ["b", "a", "zz"]


def test_pareto_mask_respects_each_direction():
    top1 = [10.0, 20.0, 20.0, 5.0]
    images = [1.0, 2.0, 3.0, 0.5]
    assert pareto_mask(top1, images, "max", "min").tolist() == [True, True, False, True]
    assert pareto_mask(top1, images, "max", "max").tolist() == [False, False, True, False]


@pytest.mark.parametrize("missing", ["spec.json", "results.parquet"])
def test_not_a_study_directory_is_a_clear_error(tmp_path, missing):
    study_dir = make_study_dir(tmp_path)
    (study_dir / missing).unlink()
    with pytest.raises(ValueError, match=rf"not a study directory: .* has no {missing}; "
                                         "run a study first"):
        write_report(study_dir)


def test_cli_writes_the_report_and_reports_errors_in_one_line(tmp_path, capsys):
    study_dir = make_study_dir(tmp_path)
    assert main(["report", str(study_dir), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.md").is_file()
    assert f"report written to {tmp_path / 'out' / 'report.md'}" in capsys.readouterr().out

    assert main(["report", str(tmp_path / "nothing_here")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"fdsl report: error: study directory {tmp_path / 'nothing_here'} does not "
                     "exist")


def test_reads_what_run_study_writes(tmp_path):
    """The contract with run_study: StudySpec.save, results_columns and storage_url, no Ray."""
    from fdsl_ray.study.run import results_columns

    spec = StudySpec(name="contract", generator={"name": "onepfrac", "num_categories": 4,
                                                 "images_per_category": 2, "image_size": 16},
                     space={"delta": SPACE["delta"], "num_categories": SPACE["num_categories"]},
                     second_objective="synthetic_images")
    study_dir = tmp_path / "contract"
    spec.save(study_dir / SPEC_FILE)
    study = optuna.create_study(study_name=spec.name, storage=storage_url(spec, study_dir),
                                directions=["maximize", "minimize"])
    distributions = {name: _distributions()[name] for name in spec.space}
    rows = []
    for index, (delta, categories, _, top1, _) in enumerate(TRIALS):
        params = {"delta": delta, "num_categories": categories}
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=distributions, values=[top1, categories * 2]))
        rows.append({"trial_id": f"t{index}", "status": "TERMINATED", "error": "",
                     "param.delta": delta, "param.num_categories": categories, "top1": top1,
                     "synthetic_images": categories * 2, "wall_seconds": 10.0,
                     "pretrain_compute_seconds": 6.0, "finetune_compute_seconds": 3.0,
                     "overhead_seconds": 1.0, "overhead_fraction": 0.1,
                     "trial_dir": str(tmp_path / f"t{index}")})
    write_results(pd.DataFrame(rows, columns=results_columns(spec)), study_dir)

    text = write_report(study_dir).read_text()
    assert "Objective: maximise `top1` and minimise `synthetic_images`." in text
    assert "Trial `t2`: top1 = 78.25, synthetic_images = 16" in text
    assert "| delta |" in text.split("## Parameter importances")[1]
    assert "Mean overhead per trial: 10.0 % of trial wall time" in text


def html_images(page: str) -> list[bytes]:
    """Every <img> of the page, decoded from its data URI; fails on any other source."""
    sources = re.findall(r"<img [^>]*src=\"([^\"]*)\"", page)
    images = []
    for source in sources:
        assert source.startswith("data:image/png;base64,"), source[:60]
        data = base64.b64decode(source.split(",", 1)[1], validate=True)
        with PIL.Image.open(io.BytesIO(data)) as image:
            image.verify()
            assert image.format == "PNG" and image.width > 0 and image.height > 0
        images.append(data)
    return images


def test_html_page_embeds_every_plot_as_a_valid_png(tmp_path):
    report = write_report(make_study_dir(tmp_path, second_metric="synthetic_images"))
    page = (report.parent / "report.html").read_text()
    images = html_images(page)
    # 3 parameters, the Pareto front, the importances (no trial.json: no curves, no previews).
    assert len(images) == len(SPACE) + 2
    assert images[0] == (report.parent / "objective_vs_delta.png").read_bytes()
    markdown = report.read_text()
    assert [line[3:] for line in markdown.splitlines() if line.startswith("## ")] == [
        html.unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", page)]
    assert "No `fdsl pretrain` command: the trial's trial.json cannot be read" in markdown
    assert "<code>fdsl pretrain</code>" in page and "src=\"objective" not in page


def test_importances_are_skipped_when_one_parameter_varied(tmp_path):
    """fANOVA gives a lone varying parameter all of the importance: 1.0 says nothing."""
    one = [(delta, 4, "onepfrac", top1, 20) for delta, _, _, top1, _ in TRIALS]
    report = write_report(make_study_dir(tmp_path, trials=one, failed=False))
    assert ("Skipped: only `delta` varied; importances rank two or more searched parameters."
            in report.read_text())
    assert not (report.parent / "param_importances.png").exists()


def test_replicate_spread_and_scratch_baseline_are_drawn_and_said(tmp_path):
    study_dir = make_study_dir(tmp_path, failed=False)
    table = pd.read_parquet(study_dir / "results.parquet")
    table["top1_std"], table["n"], table["scratch_top1"] = 2.5, 3, 40.0
    table.to_parquet(study_dir / "results.parquet")
    text = write_report(study_dir).read_text()
    assert "Trial `t00002`: top1 = 78.25 ± 2.5 (n = 3)" in text
    assert ("Error bars: one standard deviation over each configuration's replicates; dashed "
            "line: the random-init (scratch) baseline, 40." in text)


@pytest.mark.parametrize("generator, changes", [
    (("onepfrac", {"delta": 0.05, "num_categories": 7, "image_size": 24}),
     {"epochs": 3, "lr": 0.02, "num_workers": 2, "use_gpu": True, "fresh_instances": True,
      "seed": 5, "schedule": "timm_epoch", "vflip": False}),
    (("fractaldb", {"num_categories": 2, "image_size": 16, "weights": [0.5, 1.5]}),
     {"model": "cpu_micro", "batch_size": 8}),
])
def test_pretrain_command_parses_back_to_the_same_configs(generator, changes):
    """What the report prints, run through the real `fdsl pretrain` parser and config code."""
    from fdsl_ray.cli import build_parser
    from fdsl_ray.cli._overrides import parse_overrides
    from fdsl_ray.cli.pretrain import _config, pretrain_command
    from fdsl_ray.formulas import create_generator
    from fdsl_ray.study.report import shell_command
    from fdsl_ray.train.recipes import get_recipe

    config = create_generator(generator[0], **generator[1]).config
    pretrain = get_recipe("cpu").pretrain_config(**changes)
    argv, unset = pretrain_command(config, pretrain.to_dict(), "cpu")
    command = shell_command(argv)
    assert all(len(line) <= 92 for line in command.splitlines())
    tokens = shlex.split(command.replace("\\\n", " "))
    assert tokens[:2] == ["fdsl", "pretrain"]
    args, extra = build_parser().parse_known_args(tokens[1:])
    rebuilt = create_generator(args.generator, **parse_overrides(extra)).config
    assert rebuilt == config
    expected = {key: value for key, value in changes.items() if key not in unset}
    assert _config(args, rebuilt) == get_recipe("cpu").pretrain_config(**expected)
    assert unset == ({"schedule": "timm_epoch", "vflip": False} if "vflip" in changes else {})


def test_trial_records_copied_into_the_study_directory_are_read(tmp_path):
    """A study fetched off a cluster: trial_dir names the cluster's path, tune/ is a copy."""
    from fdsl_ray.formulas import create_generator
    from fdsl_ray.train.recipes import get_recipe

    study_dir = make_study_dir(tmp_path, failed=False)
    table = pd.read_parquet(study_dir / "results.parquet")
    table["trial_dir"] = [f"/mnt/fdsl/gone/tune/run_trial_{i}" for i in range(len(table))]
    table.to_parquet(study_dir / "results.parquet")
    generator = create_generator("onepfrac", delta=0.1, num_categories=8, image_size=16).config
    record = {"generator": generator,
              "pretrain": get_recipe("cpu").pretrain_config(epochs=3).to_dict()}
    copy = study_dir / "tune" / "run_trial_2"
    copy.mkdir(parents=True)
    (copy / "trial.json").write_text(json.dumps(record))

    text = write_report(study_dir).read_text()
    best = text.split("## Best configuration")[1].split("\n## ")[0]
    assert json.loads(best.split("```json")[2].split("```")[0]) == json.loads(
        json.dumps(generator))
    assert "fdsl pretrain onepfrac --recipe cpu " in best
    assert "--delta 0.1 " in best and "--epochs 3\n" in best
    previews = text.split("## Synthetic images of the best and worst trials")[1]
    assert "Not previewed (trial.json out of reach): `t00000`." in previews
    assert (study_dir / "report" / "previews.png").is_file()
