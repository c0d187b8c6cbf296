"""Replicates, the scratch baseline and the verdicts, without Ray: spec seeds, statistics and
the results table's comparison columns."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from fdsl_ray.study.baseline import (
    baseline_key,
    read_baseline,
    score_protocols,
    with_comparisons,
    write_baseline,
)
from fdsl_ray.study.report import write_report
from fdsl_ray.study.run import REPLICATE_COLUMNS, results_columns
from fdsl_ray.study.spec import StudySpec
from fdsl_ray.study.stats import summary, verdict, welch_p
from fdsl_ray.train.finetune import FinetuneConfig
from fdsl_ray.train.models import get_model

BASE = {"name": "onepfrac", "num_categories": 4, "images_per_category": 2, "image_size": 16,
        "n_points": 200}
SPACE = {"delta": {"type": "categorical", "choices": [0.01, 0.1, 0.2]}}


def make(**changes) -> StudySpec:
    return StudySpec(**{**dict(name="s", generator=BASE, space=SPACE, sampler="grid",
                               num_samples=3, pretrain={"model": "cpu_micro"}), **changes})


def test_seeds_default_to_the_recipes_one_seed_and_a_count_means_0_to_k_minus_1():
    assert make().seeds == {}
    assert make().finetune_seeds() == [0] and make().pretrain_seeds() == [0]
    spec = make(seeds={"finetune": 3, "pretrain": [4, 7]}, finetune={"seed": 9})
    assert spec.seeds == {"finetune": [0, 1, 2], "pretrain": [4, 7]}
    assert spec.finetune_seeds() == [0, 1, 2] and spec.pretrain_seeds() == [4, 7]
    assert make(finetune={"seed": 9}).finetune_seeds() == [9]
    assert StudySpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(("seeds", "message"), [
    ([0, 1], r"seeds=\[0, 1\] must be a dict"),
    ({"fine": 2}, "seeds: unknown kind.s. fine: allowed are finetune, pretrain"),
    ({"finetune": 0}, r"seeds.finetune=0 is out of range: must be in \[1, 100\]"),
    ({"finetune": []}, r"seeds.finetune=\[\] must be a count in \[1, 100\] or a list"),
    ({"pretrain": [0, -1]}, r"seeds.pretrain entry=-1 is out of range"),
    ({"finetune": [1, 1]}, r"seeds.finetune=\[1, 1\] repeats a seed"),
])
def test_bad_seeds_are_refused_naming_the_field(seeds, message):
    with pytest.raises(ValueError, match=message):
        make(seeds=seeds)


def test_asha_needs_a_single_pretraining_seed():
    with pytest.raises(ValueError, match=r"asha=True with seeds.pretrain=\[0, 1\]"):
        make(asha=True, pretrain={"model": "cpu_micro", "epochs": 3}, seeds={"pretrain": 2})


def test_summary_is_mean_sample_std_and_count():
    assert summary([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    mean, std, n = summary([5.0])
    assert (mean, n) == (5.0, 1) and math.isnan(std)
    assert summary([float("nan"), 4.0, 6.0])[2] == 2


def test_welch_matches_scipy_and_needs_two_replicates_with_spread():
    a, b = [20.0, 22.0, 21.0], [50.0, 48.0, 53.0, 51.0]
    assert welch_p(a, b) == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert math.isnan(welch_p([1.0], b)) and math.isnan(welch_p([3.0, 3.0], [3.0, 3.0]))
    assert verdict(a, b)[0] == "below" and verdict(b, a)[0] == "above"
    assert verdict([50.0, 52.0, 49.0], [48.0, 53.0, 51.0])[0] == "indistinguishable"
    assert verdict([1.0], b) == ("untested", pytest.approx(math.nan, nan_ok=True))


def _table(spec: StudySpec, scores: dict[float, list[float]]) -> pd.DataFrame:
    rows = []
    for index, (delta, top1) in enumerate(scores.items()):
        replicates = [{"pretrain_seed": 0, "finetune_seed": seed, "top1": value,
                       "probe_top1": value - 30} for seed, value in enumerate(top1)]
        mean, std, n = summary(top1)
        rows.append({"trial_id": f"t{index}", "status": "TERMINATED", "error": "",
                     "param.delta": delta, "top1": mean, "top1_std": std, "n": n,
                     "probe_top1": mean - 30, "vs_best": "", "vs_scratch": "",
                     "probe_vs_scratch": "", "replicates": json.dumps(replicates)})
    rows.append({"trial_id": "t9", "status": "ERROR", "error": "boom", "param.delta": 0.3,
                 "top1": math.nan, "n": 0, "vs_best": "", "vs_scratch": "",
                 "probe_vs_scratch": "", "replicates": "[]"})
    return pd.DataFrame(rows, columns=results_columns(spec))


def test_comparisons_name_the_best_and_test_every_configuration_against_it_and_scratch():
    spec = make(seeds={"finetune": 3})
    table = _table(spec, {0.01: [20.0, 22.0, 21.0], 0.1: [50.0, 52.0, 49.0],
                          0.2: [48.0, 53.0, 51.0]})
    scratch = [{"finetune_seed": s, "top1": t, "probe_top1": p}
               for s, t, p in ((0, 29.0, 30.0), (1, 31.0, 29.0), (2, 30.0, 31.0))]
    baseline = {"scores": {"cpu_micro": {"replicates": scratch, "top1": 30.0,
                                         "probe_top1": 30.0, "n": 3}}}
    out = with_comparisons(spec, table, baseline).set_index("param.delta")
    assert list(out["vs_best"]) == ["below", "indistinguishable", "best", ""]
    assert out.loc[0.01, "p_vs_best"] < 0.05 < out.loc[0.1, "p_vs_best"]
    assert math.isnan(out.loc[0.2, "p_vs_best"])
    assert list(out["vs_scratch"]) == ["below", "above", "above", ""]
    assert out.loc[0.1, "gain_over_scratch"] == pytest.approx(50.333333 - 30.0)
    assert out.loc[0.1, "scratch_top1"] == 30.0 and out.loc[0.1, "scratch_probe_top1"] == 30.0
    # The probe of every configuration is 30 points below its fine-tuning: below scratch.
    assert out.loc[0.2, "probe_gain_over_scratch"] == pytest.approx(50.666667 - 30 - 30.0)
    assert list(out["probe_vs_scratch"]) == ["below", "below", "below", ""]
    plain = with_comparisons(spec, table, None)
    assert plain["scratch_top1"].isna().all() and set(plain["vs_scratch"]) == {""}
    assert set(REPLICATE_COLUMNS) <= set(out.reset_index().columns)


def test_one_replicate_each_is_untested():
    spec = make()
    table = _table(spec, {0.01: [20.0], 0.1: [50.0]})
    out = with_comparisons(spec, table, None)
    assert list(out["vs_best"]) == ["untested", "best", ""]


def test_baseline_cache_is_reused_only_for_the_same_models_seeds_and_recipe(tmp_path):
    spec = make(seeds={"finetune": 2})
    assert read_baseline(tmp_path, spec) is None
    write_baseline(tmp_path, {**baseline_key(spec), "scores": {"cpu_micro": {"top1": 1.0}}})
    assert read_baseline(tmp_path, spec)["scores"]["cpu_micro"]["top1"] == 1.0
    assert baseline_key(spec)["models"] == ["cpu_micro"]
    assert read_baseline(tmp_path, make(seeds={"finetune": 3})) is None
    assert read_baseline(tmp_path, make(seeds={"finetune": 2}, finetune={"epochs": 30})) is None


@pytest.mark.slow
def test_a_replicate_scores_both_protocols_and_a_probe_recipe_runs_once():
    config = FinetuneConfig(epochs=2, warmup_epochs=0, shots=2, batch_size=8)
    model = get_model("cpu_micro")
    both = score_protocols(config, 1, weights=None, model=model)
    assert set(both) == {"top1", "probe_top1", "compute_seconds", "finetune_history"}
    probe = score_protocols(replace(config, mode="linear"), 1, weights=None, model=model)
    assert probe["top1"] == probe["probe_top1"] == both["probe_top1"]


def test_report_gives_mean_std_and_quotable_verdicts(tmp_path):
    spec = make(seeds={"finetune": 3})
    scratch = [{"finetune_seed": s, "top1": t, "probe_top1": p}
               for s, t, p in ((0, 29.0, 30.0), (1, 31.0, 29.0), (2, 30.0, 31.0))]
    baseline = {**baseline_key(spec), "scores": {"cpu_micro": {
        "replicates": scratch, "top1": 30.0, "top1_std": 1.0, "probe_top1": 30.0,
        "probe_top1_std": 1.0, "n": 3, "compute_seconds": 1.0}}}
    table = with_comparisons(spec, _table(spec, {0.01: [20.0, 22.0, 21.0],
                                                 0.1: [50.0, 52.0, 49.0],
                                                 0.2: [48.0, 53.0, 51.0]}), baseline)
    spec.save(tmp_path / "spec.json")
    table.to_parquet(tmp_path / "results.parquet")
    write_baseline(tmp_path, baseline)
    report = write_report(tmp_path).read_text()
    assert "Trial `t2`: top1 = 50.67 ± 2.517 (n = 3)" in report
    assert "Welch's t-test gives p < 0.05" in report
    assert ("Scratch baseline (random init, `cpu_micro`, same recipe and seeds, n = 3): "
            "fine-tuning 30.00 ± 1.00 %, linear probe 30.00 ± 1.00 %.") in report
    assert "\nBest: delta=0.2.\n" in report
    assert "\nNot distinguishable from the best: delta=0.1 (p = 0.856).\n" in report
    assert "\nBelow the best: delta=0.01 (p = " in report
    assert ("\nFine-tuning above scratch: delta=0.1 (+20.33 points, p = 0.000123); "
            "delta=0.2 (+20.67") in report
    assert "\nFine-tuning below scratch: delta=0.01 (-9.00 points, p = " in report
    assert "delta=0.2 (-9.33 points, p = 0.0137)." in report
    assert "| delta=0.2 | 50.67 ± 2.517 (n = 3) |" in report
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Linear probe below scratch: delta=0.01 (-39.00 points" in html
