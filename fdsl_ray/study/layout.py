"""The study directory's layout: every file and folder name that run_study, the trials, the
object-store mirror and the report read or write, spelled once. No Ray import, so that the
report and `fdsl study show` read a study without it.

STUDY_DIR/
  spec.json          the StudySpec (StudySpec.save)
  state.json         {"finished", "trials"}, written when run_study returns
  results.parquet    one row per trial (fdsl_ray.study.run.results_columns), and as CSV
  results.csv
  baseline.json      the scratch baseline (fdsl_ray.study.baseline)
  optuna.db          Optuna's sqlite storage, unless StudySpec.storage names another database
  tune/<trial>/      the Tune experiment: each trial's params, Tune's result.json, trial.json
  pretrain/<run>/    the Train runs, named by trial id, with checkpoints and exported weights
  report/            `fdsl report`'s default output: report.md, report.html and the PNGs
The results table's objectives are spelled here too, for the report to read them without Ray.
With a `storage_path`, tune/ and pretrain/ live under it instead (fdsl_ray.study.run).
"""

from __future__ import annotations

SPEC_FILE = "spec.json"
STATE_FILE = "state.json"
RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
BASELINE_FILE = "baseline.json"
OPTUNA_DB = "optuna.db"
EXPERIMENT_DIR = "tune"
TRIAL_RECORD = "trial.json"
TUNE_RESULTS = "result.json"  # Tune's per-trial results, one JSON object a line
PRETRAIN_DIR = "pretrain"
REPORT_DIR = "report"
REPORT_FILE = "report.md"
HTML_FILE = "report.html"
# The study's own files, which fdsl_ray.study.mirror copies to and from an object store.
STUDY_FILES = (SPEC_FILE, STATE_FILE, RESULTS_PARQUET, RESULTS_CSV, BASELINE_FILE, OPTUNA_DB)
# The results table's objective columns and their directions (StudySpec.objectives); a second
# objective is one of StudySpec's SECOND_OBJECTIVES, named by its `second_objective` field.
OBJECTIVE = "top1"
OBJECTIVE_MODE = "max"
SECOND_OBJECTIVE_MODE = "min"
