"""The theory study's parts: the TV estimator and its calibration on samples of known TV, the
correlations with their intervals, the bound check, and the verdict sentences made from numbers."""

import collections
import functools

import numpy as np
import pytest

from cmcd.bench import theory_summary
from cmcd.eval import tv_calibration
from cmcd.eval.correlation import correlation_ci, stratified_correlation
from cmcd.eval.divergence import TVEstimate, two_sample_tv
from cmcd.viz import theory as theory_words


def _estimate(samples, **options) -> TVEstimate:
    return two_sample_tv(*samples, **options)


# ------------------------------------------------------------------------------- the estimator


def test_tv_is_near_zero_for_one_distribution_and_near_one_for_disjoint_ones():
    rng = np.random.default_rng(0)
    same = _estimate(tv_calibration.mixture_samples(rng, 0.0))
    assert same.estimate < 0.05 and same.ci_low == 0.0
    disjoint = _estimate(tv_calibration.mixture_samples(rng, 1.0))
    assert disjoint.estimate > 0.95 and disjoint.ci_low <= disjoint.estimate <= disjoint.ci_high


def test_tv_grows_with_the_share_of_the_other_distribution_and_tracks_it():
    estimates = [_estimate(tv_calibration.mixture_samples(np.random.default_rng(1), a)).estimate
                 for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert estimates == sorted(estimates)
    truth = [a * tv_calibration.clusters_tv() for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert np.max(np.abs(np.subtract(estimates, truth))) < 0.1


def test_a_projection_hides_what_lies_off_its_directions():
    rng = np.random.default_rng(2)
    teacher = rng.normal(size=(2000, 8)) * np.array([3.0, 3.0, 1, 1, 1, 1, 1, 0.1])
    student = teacher.copy()
    student[:, 7] += 1.0  # a shift along the smallest direction: ten of its standard deviations
    halves = (teacher[:1000], student[:1000], teacher[1000:], student[1000:])
    assert _estimate(halves, dims=None).estimate > 0.9
    assert _estimate(halves, dims=2).estimate < 0.1


def test_the_gaussian_family_has_the_tv_it_is_drawn_for():
    # The best test between the two shifted Gaussians thresholds the first coordinate halfway.
    for tv in (0.3, 0.7):
        fit_a, fit_b, _, _ = tv_calibration.gaussian_samples(np.random.default_rng(3), tv)
        middle = (fit_a[:, 0].mean() + fit_b[:, 0].mean()) / 2
        assert np.mean(fit_a[:, 0] < middle) - np.mean(fit_b[:, 0] < middle) == pytest.approx(tv, abs=0.05)
    assert tv_calibration.clusters_tv() == pytest.approx(1.0, abs=0.01)


def test_calibration_rows_and_summary():
    always_half = lambda *samples, seed: TVEstimate(0.5, 0.4, 0.6)  # noqa: E731
    rows = tv_calibration.calibrate(always_half, "half", mixture_levels=(0.0, 0.5), gaussian_levels=(0.5,),
                                    spread_levels=(0.5,))
    assert [r["family"] for r in rows] == ["mixture", "mixture", "gaussian", "spread"]
    assert set(rows[0]) == {"estimator", "family", "true_tv", "estimated_tv", "ci_low", "ci_high"}
    summary = tv_calibration.calibration_summary(rows)
    assert summary["max_error"] == 0.5 and summary["coverage"] == pytest.approx(2 / 3, abs=1e-3)


def test_the_spread_family_has_its_tv_and_the_projections_miss_most_of_it():
    scale = tv_calibration.spread_scale(0.5)
    x = np.random.default_rng(5).normal(size=(100_000, tv_calibration.DIM))
    squared = (x ** 2).sum(axis=1)
    log_ratio = -squared / (2 * scale ** 2) + squared / 2 - tv_calibration.DIM * np.log(scale)  # log q/p
    assert np.mean(np.maximum(0.0, 1 - np.exp(log_ratio))) == pytest.approx(0.5, abs=0.01)
    samples = tv_calibration.spread_samples(np.random.default_rng(6), 0.9)
    assert _estimate(samples, dims=2).estimate < 0.3  # of a true TV of 0.9
    rows = [{"family": "spread", "true_tv": 0.9, "estimated_tv": 0.2, "ci_low": 0.1, "ci_high": 0.3},
            {"family": "gaussian", "true_tv": 0.5, "estimated_tv": 0.45, "ci_low": 0.4, "ci_high": 0.5}]
    assert tv_calibration.spread_summary(rows) == {"levels": 1, "loss_by_true_tv": {0.9: 0.7},
                                                   "max_loss": 0.7}
    assert tv_calibration.calibration_summary(rows)["max_error"] == 0.05  # spread rows apart


def test_the_estimator_is_calibrated_within_a_tenth():
    rows = tv_calibration.calibrate(functools.partial(two_sample_tv, dims=2), "tv")
    assert {r["true_tv"] for r in rows} >= {0.0, 0.5, 0.9}
    assert tv_calibration.calibration_summary(rows)["max_error"] <= 0.1


# ------------------------------------------------------------------------------- correlations


def test_correlation_of_a_monotone_relation_is_one_with_a_tight_interval():
    x = np.arange(10.0)
    result = correlation_ci(x, x ** 2, kind="spearman", draws=200)
    assert result == {"r": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 10}
    assert correlation_ci(x, -x, kind="pearson", draws=200)["r"] == -1.0
    assert correlation_ci(x, np.ones(10), draws=200)["r"] is None  # a constant orders nothing


def test_pooling_by_stratum_counts_only_the_relation_inside_each_stratum():
    # Inside each pair error falls as TV grows, but the pair with more TV has more error:
    # pooled naively the correlation is positive, pooled by stratum it is negative.
    x = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    y = np.array([0.3, 0.2, 0.1, 0.9, 0.8, 0.7])
    strata = np.array(["a"] * 3 + ["b"] * 3)
    assert stratified_correlation(x, y, np.zeros(6), "pearson") > 0.5
    assert stratified_correlation(x, y, strata, "pearson") == pytest.approx(-1.0)
    pooled = correlation_ci(x, y, strata, "spearman", draws=300)
    assert pooled["r"] == pytest.approx(-1.0) and pooled["ci_high"] < 0


def test_the_bootstrap_over_arms_and_seeds_sees_that_seeds_of_one_arm_are_not_independent():
    rng = np.random.default_rng(7)
    arm_x, arm_y = rng.random(5), rng.random(5)  # five arms, weakly related
    x = np.repeat(arm_x, 4) + 1e-3 * rng.random(20)  # four near-identical seeds per arm
    y = np.repeat(arm_y, 4) + 1e-3 * rng.random(20)
    arms = np.repeat(np.arange(5), 4)
    students = correlation_ci(x, y, kind="pearson", draws=500)
    clustered = correlation_ci(x, y, kind="pearson", draws=500, clusters=arms)
    assert clustered["r"] == students["r"]
    assert clustered["ci_high"] - clustered["ci_low"] > 1.5 * (students["ci_high"] - students["ci_low"])


def test_the_interval_widens_with_noise():
    rng = np.random.default_rng(4)
    x = rng.random(40)
    tight = correlation_ci(x, x + 0.01 * rng.random(40), draws=300)
    loose = correlation_ci(x, x + 0.5 * rng.random(40), draws=300)
    assert tight["ci_high"] - tight["ci_low"] < loose["ci_high"] - loose["ci_low"]
    assert loose["ci_low"] <= loose["r"] <= loose["ci_high"]


# ------------------------------------------------------------------------------ bound and words


def _student(error, source_error, tv, half_width=0.02):
    return {"pair": "p", "arm": "cmc", "seed": 0, "error": error, "source_error": source_error,
            "n_test": 1000, "tv": tv, "tv_low": tv - half_width, "tv_high": tv + half_width}


def test_the_bound_fails_only_beyond_both_intervals_and_the_calibration_error():
    assert theory_summary.bound_verdict(_student(0.30, 0.10, 0.50), "tv", 0.05) == "holds"
    assert theory_summary.bound_verdict(_student(0.60, 0.10, 0.50), "tv", 0.05) == "undecided"
    assert theory_summary.bound_verdict(_student(0.80, 0.10, 0.50), "tv", 0.05) == "fails"
    assert theory_summary.bound_verdict(_student(0.80, 0.10, 0.50), "tv", 0.20) == "undecided"
    check = theory_summary.bound_check([_student(0.30, 0.10, 0.50), _student(0.80, 0.10, 0.50)],
                                       "tv", 0.05)
    assert (check["holds"], check["undecided"], check["fails"]) == (1, 0, 1)
    assert check["by_pair"] == {"p": {"holds": 1, "undecided": 0, "fails": 1}}
    assert check["failures"][0]["error"] == 0.80


def test_verdicts_are_made_from_the_numbers(made_up_theory_report):
    report = made_up_theory_report
    summary = report["summary"]
    assert summary["saturation"]["tv"] == 0.0 and summary["saturation"]["tv_wide"] == 1.0
    lines = theory_words.verdict_lines(report)
    text = " ".join(lines)
    assert "target at most 0.1: met" in text and "target at most 25 %: met" in text
    assert "excluding 0: yes (2 of 2 pairs)" in text
    assert "supported in every pair" in text and "No student breaks the bound" in text

    flipped = [{**p, "error": 1 - p["error"]} for p in report["points"]]
    against = {**report, "summary": theory_summary.summary(flipped, report["calibration"])}
    text = " ".join(theory_words.verdict_lines(against))
    assert "excluding 0: no (0 of 2 pairs; below 0 in digits-sketch, fashion-depth)" in text
    assert "Against the paper: the target error falls" in text
    assert "Every break is against the 2-direction TV only" in text

    narrow = [{**p, "tv_wide": 0.3, "tv_wide_low": 0.28, "tv_wide_high": 0.32} for p in flipped]
    against = {**report, "summary": theory_summary.summary(narrow, report["calibration"])}
    text = " ".join(theory_words.verdict_lines(against))
    assert "exceeds even the TV on 16 directions" in text and "no proof against it" in text
    assert theory_words.BOUND_SCOPE in text


def test_every_estimators_correlation_is_reported_with_its_sign(made_up_theory_report):
    flipped = [{**p, "tv_head": 1 - p["tv_head"]} for p in made_up_theory_report["points"]]
    summary = theory_summary.summary(flipped, made_up_theory_report["calibration"])
    sentence = theory_words.every_estimator_sentence(summary)
    assert "TV 2-D 1.00" in sentence and "TV head -1.00" in sentence  # the head's ρ flipped sign
    assert "TV 16-D –" in sentence  # constant at 1.0: it orders nothing
    assert summary["correlation"]["all"]["tv"]["bootstrap"].startswith("arms, then seeds")


def test_the_gap_sweep_is_judged_on_its_own_students(made_up_theory_report):
    points = made_up_theory_report["points"]
    # inside the sweep (cmc and "cmc, gap 1") the error falls with TV; the other arms keep rising
    turned = [{**p, "error": 1 - p["error"]} if p["gap_sweep"] else p for p in points]
    summary = theory_summary.summary(turned, made_up_theory_report["calibration"])
    sweep = summary["correlation"]["gap_sweep"]["tv"]
    assert sweep["pooled"]["spearman"]["n"] == sum(p["gap_sweep"] for p in points) == 12
    fixed_gap = summary["correlation"]["fixed_gap"]["tv"]
    assert sweep["pooled"]["spearman"]["r"] < 0 < fixed_gap["pooled"]["spearman"]["r"]
    sentence = theory_words.gap_sweep_sentence(summary)
    assert "in 0 of 2 pairs, below 0 in digits-sketch, fashion-depth" in sentence
    assert "along the gap sweep: TV 2-D -" in theory_words.every_estimator_sentence(summary)
    untouched = theory_words.gap_sweep_sentence(made_up_theory_report["summary"])
    assert "in 2 of 2 pairs (digits-sketch, fashion-depth)" in untouched


def test_the_theory_plan_sweeps_five_gaps_from_0_to_1_on_every_pair():
    from cmcd.bench import theory as bench_theory
    from cmcd.modalities import pairs

    sweep = [(study, c) for study, c in bench_theory.planned_runs(bench_theory.FULL)
             if study.startswith("cmc, gap")]
    gaps = sorted({c.gap for _, c in sweep})
    assert len(gaps) >= 5 and gaps[0] == 0.0 and gaps[-1] == 1.0
    every_pair = {*pairs.PAIRS, "digits-audio-recorded"}  # real recordings too
    assert {c.pair for _, c in sweep} == every_pair and {c.method for _, c in sweep} == {"cmc"}
    runs_per_point = collections.Counter((c.pair, c.gap) for _, c in sweep)
    for pair in every_pair:
        default_gap = pairs.get_spec(pair).default_gap
        for gap in gaps:  # at a pair's default gap the plain `cmc` arm is that student
            assert runs_per_point[pair, gap] == (0 if gap == default_gap else 3), (pair, gap)


def test_every_table_lists_the_pairs_in_one_order_whatever_order_the_runs_finished_in(
        made_up_theory_report):
    finished_backwards = made_up_theory_report["points"][::-1]
    summary = theory_summary.summary(finished_backwards, made_up_theory_report["calibration"])
    orders = [list(summary["correlation"][subset][kind]["by_pair"])
              for subset in summary["correlation"] for kind in summary["correlation"][subset]]
    orders += [list(summary["bound"][kind]["by_pair"]) for kind in summary["bound"]]
    report = {**made_up_theory_report, "points": finished_backwards}
    orders.append([panel.title for panel in theory_words.panels(report)][:-1])  # the last: the bound
    assert all(order == ["digits-sketch", "fashion-depth"] for order in orders)
