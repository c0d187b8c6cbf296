"""Studies: Ray Tune + Optuna searches over synthetic pre-training data, and their reports."""
