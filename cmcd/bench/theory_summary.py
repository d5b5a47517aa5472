"""The theory benchmark's numbers, from its points (one per student) and its TV calibration:

- calibration: the estimator's largest error on samples of known TV, and its intervals' coverage;
- saturation: the share of students whose estimated TV is at least 0.98, where it orders nothing;
- correlation of target error with each TV, within each pair and pooled with the pair as a
  stratum, with bootstrap intervals, at a fixed gap, along the gap sweep and over all students;
- the bound, student by student: err_target <= err_source + TV.
"""

from __future__ import annotations

import math
import statistics

from cmcd.eval.correlation import KINDS, correlation_ci
from cmcd.eval.results import group
from cmcd.eval.tv_calibration import calibration_summary, spread_summary
from cmcd.viz.theory import BOUND_KINDS, TV_KINDS

SATURATED = 0.98
Z_95 = 1.959964
SUBSETS = {"fixed_gap": lambda p: p["fixed_gap"], "gap_sweep": lambda p: p.get("gap_sweep", False),
           "all": lambda p: True}


def saturation(points: list[dict]) -> dict:
    shares = {kind: round(sum(p[kind] >= SATURATED for p in points) / len(points), 4)
              for kind in TV_KINDS} if points else dict.fromkeys(TV_KINDS)
    return {"threshold": SATURATED, "students": len(points), **shares}


def correlations(points: list[dict], kind: str) -> dict:
    """Spearman and Pearson of error against TV `kind`: per pair, and pooled over the pairs
    with each pair a stratum. The bootstrap resamples arms, then seeds within each drawn arm (the
    students of one arm share their recipe, so they are not independent draws)."""
    def both(rows, strata=None):
        x, y = [r[kind] for r in rows], [r["error"] for r in rows]
        arms = [r["arm"] for r in rows]
        return {name: correlation_ci(x, y, strata, name, clusters=arms) for name in KINDS}
    return {"by_pair": {pair: both(rows) for (pair,), rows in sorted(group(points, "pair").items())},
            "pooled": both(points, [p["pair"] for p in points]),
            "bootstrap": "arms, then seeds within each drawn arm, within each pair"}


def error_gap_interval(point: dict) -> tuple[float, float]:
    """95 % interval of err_target - err_source (two proportions on the same test size)."""
    target, source, n = point["error"], point["source_error"], point["n_test"]
    half = Z_95 * math.sqrt((target * (1 - target) + source * (1 - source)) / n)
    gap = target - source
    return gap - half, gap + half


def bound_verdict(point: dict, kind: str, allowance: float) -> str:
    """'fails' when err_target - err_source is above TV beyond both intervals and the estimator's
    largest calibration error (`allowance`: it is a lower bound, so it may read low); 'holds'
    when it is below even the TV interval's lower end; else 'undecided'."""
    low, high = error_gap_interval(point)
    if low > point[f"{kind}_high"] + allowance:
        return "fails"
    return "holds" if high <= point[f"{kind}_low"] else "undecided"


def _counts(verdicts: list[str]) -> dict:
    return {word: verdicts.count(word) for word in ("holds", "undecided", "fails")}


def bound_check(points: list[dict], kind: str, allowance: float) -> dict:
    verdicts = [bound_verdict(p, kind, allowance) for p in points]
    by_pair: dict[str, list[str]] = {}
    for p, verdict in zip(points, verdicts, strict=True):
        by_pair.setdefault(p["pair"], []).append(verdict)
    slack = [p[kind] - (p["error"] - p["source_error"]) for p in points]
    return {**_counts(verdicts), "students": len(points), "allowance": allowance,
            "median_slack": round(statistics.median(slack), 4) if slack else None,
            "failures": [{key: p[key] for key in ("pair", "arm", "seed", "error", "source_error", kind)}
                         for p, v in zip(points, verdicts, strict=True) if v == "fails"],
            "by_pair": {pair: _counts(found) for pair, found in sorted(by_pair.items())}}


def summary(points: list[dict], calibration: list[dict]) -> dict:
    calibrated = {name: calibration_summary(rows)
                  for (name,), rows in group(calibration, "estimator").items()}
    spread = {name: spread_summary(rows) for (name,), rows in group(calibration, "estimator").items()}
    return {
        "calibration": calibrated,
        "spread": spread,
        "saturation": saturation(points),
        "correlation": {subset: {kind: correlations([p for p in points if keep(p)], kind)
                                 for kind in TV_KINDS}
                        for subset, keep in SUBSETS.items()},
        "bound": {kind: bound_check(points, kind, calibrated[kind]["max_error"])
                  for kind in BOUND_KINDS},
    }
