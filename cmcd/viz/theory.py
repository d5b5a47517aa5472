"""The theory benchmark's figures and words, from its report (results/theory.json): target error
against estimated TV per pair, the bound student by student, the TV estimator's calibration, the
tables of theory.md, and verdict sentences computed from the numbers (drawn by `cmcd bench
theory`, shown in the app, quoted in the README)."""

from __future__ import annotations

from cmcd.eval.divergence import TV_DIMS, WIDE_TV_DIMS
from cmcd.eval.results import group
from cmcd.viz import figures

TITLE = "Target error against estimated TV distance"
CALIBRATION_TITLE = "TV estimator on samples of known TV"
TV_KINDS = {"tv": f"TV {TV_DIMS}-D", "tv_wide": f"TV {WIDE_TV_DIMS}-D", "tv_head": "TV head"}
TV_MEANINGS = {"tv": f"the embeddings on their top {TV_DIMS} principal directions",
               "tv_wide": f"the embeddings on their top {WIDE_TV_DIMS} principal directions",
               "tv_head": "the teacher head's class probabilities (made of the same outputs as "
                          "the error, so a reference only)"}
BOUND_KINDS = ("tv", "tv_wide")  # the calibrated estimates the bound is checked against
SUBSET_TITLES = {"fixed_gap": "at the pair's default gap (methods, lengths, budgets)",
                 "gap_sweep": "along the gap sweep (CMC at gaps 0 to 1 and at the pair's default gap, "
                              "nothing else varied)",
                 "all": "over all students (the gap varied too)"}
SUBSET_SHORT = {"fixed_gap": "at a fixed gap", "gap_sweep": "along the gap sweep", "all": "over all students"}


def is_current(report: dict | None) -> bool:
    """Whether a theory report has this version's numbers (older ones lack the calibration)."""
    return bool(report) and "calibration" in report and "bound" in report.get("summary", {})


# ------------------------------------------------------------------------------------- figures


def _arm_series(rows: list[dict], x: str, y) -> list[figures.Series]:
    return [figures.Series(arm, [r[x] for r in chosen], [y(r) for r in chosen], mode="markers",
                           hover=[f"{r['pair']}, {arm}, seed {r['seed']}" for r in chosen])
            for (arm,), chosen in group(rows, "arm").items()]


def panels(report: dict) -> list[figures.Panel]:
    """Per pair: error against TV, a series per arm; then err_target - err_source against TV,
    with the line where the bound is tight."""
    points, result = report["points"], []
    for (pair,), rows in sorted(group(points, "pair").items()):
        panel = figures.Panel(pair, f"estimated {TV_KINDS['tv']}", "target error")
        panel.series = _arm_series(rows, "tv", lambda r: r["error"])
        result.append(panel)
    bound = figures.Panel("bound: points above the line break it", f"estimated {TV_KINDS['tv']}",
                          "err_target - err_source")
    bound.series = _arm_series(points, "tv", lambda r: r["error"] - r["source_error"])
    bound.series.append(figures.Series("err_target - err_source = TV", [0, 1], [0, 1], mode="fit"))
    return result + [bound]


def calibration_panels(report: dict) -> list[figures.Panel]:
    result = []
    for (name,), rows in group(report["calibration"], "estimator").items():
        panel = figures.Panel(f"{TV_KINDS[name]} estimator", "true TV", "estimated TV")
        for (family,), chosen in group(rows, "family").items():
            panel.series.append(figures.Series(family, [r["true_tv"] for r in chosen],
                                               [r["estimated_tv"] for r in chosen], mode="markers"))
        panel.series.append(figures.Series("estimate = true TV", [0, 1], [0, 1], mode="fit"))
        result.append(panel)
    return result


def plotly_figure(report: dict):
    return figures.plotly_figure(panels(report), TITLE, columns=3)


# --------------------------------------------------------------------------------------- words


def interval(entry: dict | None, digits: int = 2) -> str:
    """'0.42 [0.10, 0.70]', or '–' when there is no number."""
    if not entry or entry.get("r") is None:
        return "–"
    return f"{entry['r']:.{digits}f} [{entry['ci_low']:.{digits}f}, {entry['ci_high']:.{digits}f}]"


def _pairs_where(by_pair: dict, test) -> list[str]:
    return [pair for pair, entry in by_pair.items()
            if entry["spearman"]["r"] is not None and test(entry["spearman"])]


def _pairs_off_zero(by_pair: dict) -> tuple[list[str], list[str]]:
    """The pairs whose Spearman interval lies above 0, and those whose interval lies below."""
    return (_pairs_where(by_pair, lambda e: e["ci_low"] > 0),
            _pairs_where(by_pair, lambda e: e["ci_high"] < 0))


def calibration_sentence(summary: dict) -> str:
    tv, wide = summary["calibration"]["tv"], summary["calibration"]["tv_wide"]
    met = "met" if max(tv["max_error"], wide["max_error"]) <= 0.1 else "not met"
    return (f"Calibration on samples of known TV ({tv['levels']} levels from 0 to 1, mixtures and "
            f"Gaussian shifts): the largest error is {tv['max_error']:.3f} on {TV_DIMS} directions "
            f"and {wide['max_error']:.3f} on {WIDE_TV_DIMS} (target at most 0.1: {met}); the 95 % "
            f"intervals, which count sampling noise only, hold the true TV at {tv['coverage']:.0%} "
            f"and {wide['coverage']:.0%} of the levels.")


def spread_sentence(summary: dict) -> str:
    """What the 2- and 16-direction projections lose when the difference is spread out."""
    spread = summary.get("spread", {})
    if not all(spread.get(kind, {}).get("levels") for kind in BOUND_KINDS):
        return ""
    def losses(kind: str) -> str:
        by_level = spread[kind]["loss_by_true_tv"].items()
        return ", ".join(f"{loss:.2f} at {float(tv):g}" for tv, loss in by_level)
    words = [f"{TV_KINDS[kind]} reads up to {spread[kind]['max_loss']:.2f} below the true TV ({losses(kind)})"
             for kind in BOUND_KINDS]
    return ("On samples whose difference is spread over all 128 coordinates (two isotropic Gaussians "
            "of different scales), " + "; ".join(words) + ": a projection can miss most of the TV.")


def every_estimator_sentence(summary: dict) -> str:
    """The pooled Spearman ρ of error against every TV estimator, signs included, none picked."""
    parts = []
    for subset, title in SUBSET_SHORT.items():
        found = summary["correlation"].get(subset)
        if not found:  # reports made before the gap sweep had its own subset
            continue
        rhos = [f"{TV_KINDS[kind]} {interval(found[kind]['pooled']['spearman'])}"
                for kind in TV_KINDS if kind in found]
        parts.append(f"{title}: " + ", ".join(rhos))
    return ("Pooled ρ(target error, TV) on every estimator, none chosen by its result (bootstrap over "
            "arms and seeds): " + "; ".join(parts) + ".")


def saturation_sentence(summary: dict) -> str:
    s = summary["saturation"]
    met = "met" if s["tv"] is not None and s["tv"] <= 0.25 else "not met"
    return (f"Of the {s['students']} distilled students, {s['tv']:.0%} sit at an estimated TV ≥ "
            f"{s['threshold']} on {TV_DIMS} directions (target at most 25 %: {met}), "
            f"{s['tv_wide']:.0%} on {WIDE_TV_DIMS} directions and {s['tv_head']:.0%} as the head "
            "sees them.")


def gap_sweep_sentence(summary: dict) -> str:
    """Within each pair, does the error grow with TV when only the gap moves?"""
    sweep = summary["correlation"].get("gap_sweep", {}).get("tv")
    if not sweep or not sweep["by_pair"]:
        return ""
    by_pair = sweep["by_pair"]
    above, below = _pairs_off_zero(by_pair)
    return (f"Along the gap sweep (only the gap moves), Spearman ρ(target error, {TV_KINDS['tv']}) > 0 "
            f"with its 95 % interval excluding 0 in {len(above)} of {len(by_pair)} pairs"
            + (f" ({', '.join(above)})" if above else "")
            + (f", below 0 in {', '.join(below)}" if below else "")
            + f"; pooled {interval(sweep['pooled']['spearman'])}.")


def correlation_sentences(summary: dict) -> list[str]:
    fixed, everything = summary["correlation"]["fixed_gap"]["tv"], summary["correlation"]["all"]["tv"]
    by_pair, pooled = fixed["by_pair"], fixed["pooled"]["spearman"]
    above, below = _pairs_off_zero(by_pair)
    every = "yes" if by_pair and len(above) == len(by_pair) else "no"
    lines = [f"At a fixed gap, within every pair Spearman ρ(target error, {TV_KINDS['tv']}) > 0 "
             f"with its 95 % interval excluding 0: {every} ({len(above)} of {len(by_pair)} pairs"
             + (f"; below 0 in {', '.join(below)}" if below else "") + ").",
             f"Pooled with the pair as a stratum: ρ = {interval(pooled)} at a fixed gap, "
             f"{interval(everything['pooled']['spearman'])} over all students.",
             gap_sweep_sentence(summary)]
    if pooled["r"] is None:
        lines.append("Too few students to judge the paper's claim that the error grows with TV.")
    elif pooled["ci_low"] > 0:
        lines.append("The paper's claim that the target error grows with the TV distance is "
                     + ("supported in every pair." if every == "yes" else
                        "supported pooled, but not within every pair."))
    elif pooled["ci_high"] < 0:
        lines.append("Against the paper: the target error falls as the estimated TV grows.")
    else:
        lines.append("The data do not support the paper's claim that the target error grows "
                     "with the TV distance: the pooled interval includes 0.")
    return lines


def bound_sentences(summary: dict) -> list[str]:
    narrow, wide = summary["bound"]["tv"], summary["bound"]["tv_wide"]

    def counts(b):
        return f"holds for {b['holds']}, is undecided for {b['undecided']} and fails for {b['fails']}"
    lines = [f"The bound err_target ≤ err_source + TV, student by student (of {wide['students']}): "
             f"with TV on {WIDE_TV_DIMS} directions it {counts(wide)} (median slack "
             f"{wide['median_slack']:.2f}); with TV on {TV_DIMS} directions, a lower bound on it, "
             f"it {counts(narrow)} (median slack {narrow['median_slack']:.2f})."]
    if wide["fails"]:
        lines.append(f"{wide['fails']} students' error gap exceeds even the TV on {WIDE_TV_DIMS} "
                     "directions beyond its calibration error: the bound is not confirmed for them, "
                     "which is no proof against it (the estimate is a lower bound).")
    elif narrow["fails"]:
        lines.append(f"Every break is against the {TV_DIMS}-direction TV only, a lower bound on the "
                     "embeddings' TV, so none contradicts the paper's bound.")
    else:
        lines.append("No student breaks the bound.")
    lines.append(BOUND_SCOPE)
    return lines


BOUND_SCOPE = ("What this check can show: every TV here is a classifier two-sample estimate on a "
               "projection of the embeddings, a lower bound on the latent TV of the paper (up to "
               "sampling noise), so a student whose error gap is below the estimate's lower end "
               "confirms the inequality for that student, while a gap above it refutes nothing: the "
               "latent TV may be larger than any estimate (on spread-out differences the 2- and "
               "16-direction projections lose much of it, see the spread-signal calibration rows). "
               "A `fails` is therefore a bound that no estimate here confirms, not a broken bound.")


def verdict_lines(report: dict) -> list[str]:
    summary = report["summary"]
    return [line for line in (calibration_sentence(summary), spread_sentence(summary),
                              saturation_sentence(summary), *correlation_sentences(summary),
                              every_estimator_sentence(summary), *bound_sentences(summary)) if line]
