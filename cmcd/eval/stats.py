"""Is one method better than another over seeds? Paired differences, t intervals, Holm's correction.

Two methods run with the same seeds share each seed's pair subset, batch order and initial
weights, so a comparison uses the per-seed differences d_s = method_s − baseline_s: a paired t
test (two-sided) on their mean. A table asks many such questions at once, so the p values of a
family (the cells of one table) are adjusted by Holm's step-down method, which keeps the chance of
any false "beats" or "loses to" in the family at or below α = 0.05.

The rule, stated once: a cell's verdict is "beats" when its Holm-adjusted p is below α and the
mean difference is positive, "loses to" when it is below α and the difference is negative, and
"ties" otherwise. Its interval is the paired t interval at level 1 − α·p/p_holm, which excludes 0
exactly when p_holm < α: the interval and the word always agree. That level is not 95 % (with
p = 0.01 and p_holm = 0.05 it is 99 %), so each cell also carries its plain 95 % t interval
(ci95_low, ci95_high), which can exclude 0 in a cell that ties after Holm's correction. With one
seed there is no test: the cell ties and its intervals are unbounded (None).

The claim's size (`claim_size_verdicts`): does a method gain at least a margin (2 points) over a
baseline? Two one-sided paired t tests of the mean difference against the margin, each
Holm-corrected across the family: "at least" when "mean > margin" is significant, "less than"
when "mean < margin" is, else "undecided".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats

ALPHA = 0.05
VERDICTS = ("beats", "ties", "loses to")


@dataclass(frozen=True)
class PairedTest:
    n: int
    mean: float  # mean of the differences
    se: float  # standard error of that mean (0 when all differences agree)
    p: float  # two-sided p value of "mean difference = 0"

    def interval(self, level: float) -> tuple[float | None, float | None]:
        """The t interval for the mean difference at `level` (None: unbounded, one seed)."""
        if self.n < 2:
            return None, None
        if self.se == 0:
            return self.mean, self.mean
        half = scipy_stats.t.ppf(0.5 + level / 2, self.n - 1) * self.se
        return self.mean - half, self.mean + half


def paired_t(differences: Sequence[float]) -> PairedTest:
    """Paired t test on per-seed differences (as scipy.stats.ttest_rel on the two samples)."""
    n = len(differences)
    if n == 0:
        raise ValueError("no paired differences to test")
    mean = statistics.fmean(differences)
    if n < 2:
        return PairedTest(n, mean, math.nan, 1.0)
    se = statistics.stdev(differences) / math.sqrt(n)
    if se == 0:
        return PairedTest(n, mean, 0.0, 1.0 if mean == 0 else 0.0)
    p = 2 * scipy_stats.t.sf(abs(mean / se), n - 1)
    return PairedTest(n, mean, se, float(p))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p values, in the given order: the i-th smallest p times (m − i + 1), made
    non-decreasing along that order and capped at 1."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def verdict(mean: float, p_holm: float, alpha: float = ALPHA) -> str:
    if p_holm < alpha and mean > 0:
        return "beats"
    if p_holm < alpha and mean < 0:
        return "loses to"
    return "ties"


def _level(p: float, p_holm: float, alpha: float) -> float:
    """The interval level that matches the verdict: 1 − α·p/p_holm (see the module doc)."""
    return 1 - alpha if p_holm == 0 else 1 - alpha * p / p_holm


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def family_verdicts(cells: Sequence[tuple[dict, Sequence[float]]], alpha: float = ALPHA) -> list[dict]:
    """One family of comparisons: each cell is (its labels, its per-seed differences method −
    baseline). Returns each cell's labels with n, diff_mean, ci_low, ci_high, p, p_holm and
    verdict, in the given order, Holm-corrected across the family."""
    tests = [paired_t(differences) for _, differences in cells]
    adjusted = holm([test.p for test in tests])
    rows = []
    for (labels, _), test, p_holm in zip(cells, tests, adjusted, strict=True):
        level = _level(test.p, p_holm, alpha)
        low, high = test.interval(level)
        low95, high95 = test.interval(1 - alpha)
        rows.append({**labels, "n": test.n, "diff_mean": round(test.mean, 4), "ci_low": _rounded(low),
                     "ci_high": _rounded(high), "ci_level": round(level, 6), "ci95_low": _rounded(low95),
                     "ci95_high": _rounded(high95), "p": test.p, "p_holm": p_holm,
                     "verdict": verdict(test.mean, p_holm, alpha)})
    return rows


CLAIM_MARGIN = 0.02  # the paper's "+2–3 %": at least 2 points of accuracy
CLAIM_VERDICTS = ("at least", "undecided", "less than")


def one_sided_p(differences: Sequence[float], margin: float) -> tuple[float, float]:
    """(p of "mean difference > margin", p of "mean difference < margin"): one-sided one-sample t
    tests of the differences against the margin (as scipy.stats.ttest_1samp with
    alternative="greater" and "less"). One difference, or all equal to the margin: (1, 1)."""
    test = paired_t([d - margin for d in differences])
    if test.n < 2 or (test.se == 0 and test.mean == 0):
        return 1.0, 1.0
    if test.se == 0:
        return (0.0, 1.0) if test.mean > 0 else (1.0, 0.0)
    statistic = test.mean / test.se
    return (float(scipy_stats.t.sf(statistic, test.n - 1)), float(scipy_stats.t.cdf(statistic, test.n - 1)))


def claim_size_verdicts(cells: Sequence[tuple[dict, Sequence[float]]], margin: float = CLAIM_MARGIN,
                        alpha: float = ALPHA) -> list[dict]:
    """One family of "gain ≥ margin" questions, each cell (labels, per-seed differences). Returns
    each cell's labels with n, margin, diff_mean, its 95 % t interval, both one-sided p values and
    their Holm adjustments across the family, and the verdict."""
    sides = [one_sided_p(differences, margin) for _, differences in cells]
    above = holm([p for p, _ in sides])
    below = holm([p for _, p in sides])
    rows = []
    for (labels, differences), (p_above, p_below), h_above, h_below in zip(cells, sides, above, below,
                                                                            strict=True):
        test = paired_t(differences)
        low, high = test.interval(1 - alpha)
        word = "at least" if h_above < alpha else "less than" if h_below < alpha else "undecided"
        rows.append({**labels, "n": test.n, "margin": margin, "diff_mean": round(test.mean, 4),
                     "ci95_low": _rounded(low), "ci95_high": _rounded(high),
                     "p_above": p_above, "p_above_holm": h_above, "p_below": p_below,
                     "p_below_holm": h_below, "verdict": word})
    return rows


def mean_interval(values: Sequence[float], level: float = 1 - ALPHA) -> tuple[float, float]:
    """(mean, half-width of its t interval at `level`) over seeds; half-width NaN for one value."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    se = statistics.stdev(values) / math.sqrt(len(values))
    return mean, float(scipy_stats.t.ppf(0.5 + level / 2, len(values) - 1) * se)


def paired_differences(method: dict[int, float], baseline: dict[int, float]) -> list[float]:
    """method − baseline for every seed both have, in seed order."""
    return [method[seed] - baseline[seed] for seed in sorted(set(method) & set(baseline))]
