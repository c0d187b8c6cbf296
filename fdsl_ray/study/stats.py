"""Replicate statistics: mean +- std per configuration, and which differences are real.

Two configurations are called distinguishable when Welch's two-sample t-test (unequal
variances) gives p < ALPHA. Welch rather than a bootstrap interval because a study has few
replicates (3 to 5 seeds): a bootstrap of 3 values has only 10 distinct resamples and its
interval is too narrow, while the t-distribution accounts for the small n. Welch rather than
Student's t because a configuration that barely learns and one that learns well need not
have the same spread. The test ignores that a trial and the scratch baseline share their
fine-tuning seeds (it is conservative), and no correction for many comparisons is applied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05
TEST_NAME = "Welch's t-test"
# Verdicts in the results table: "best" (the highest mean), "above" / "below" (p < ALPHA),
# "indistinguishable" (p >= ALPHA), "untested" (fewer than 2 replicates on a side, or no
# spread on either); "" for a trial without the score.
VERDICTS = ("best", "above", "below", "indistinguishable", "untested")


def summary(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample standard deviation (n - 1), n) of the finite values; std is NaN for n 1."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(finite)
    if n == 0:
        return math.nan, math.nan, 0
    return float(finite.mean()), float(finite.std(ddof=1)) if n > 1 else math.nan, n


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Welch p-value of mean(a) != mean(b); NaN when it cannot be computed."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2 or (a.var() == 0 and b.var() == 0):
        return math.nan
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def verdict(a: Sequence[float], b: Sequence[float]) -> tuple[str, float]:
    """How mean(a) stands against mean(b): ("above" | "below" | "indistinguishable" |
    "untested", p)."""
    p = welch_p(a, b)
    if math.isnan(p):
        return "untested", p
    if p >= ALPHA:
        return "indistinguishable", p
    return ("above" if np.mean(a) > np.mean(b) else "below"), p
