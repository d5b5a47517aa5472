"""Paired comparisons over seeds: the t test and interval against scipy, Holm's correction on a
textbook example, and verdict words that always agree with their intervals."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cmcd.eval import stats


def test_paired_t_is_scipys_ttest_rel_with_its_interval():
    rng = np.random.default_rng(3)
    a = rng.normal(0.80, 0.02, 5)
    b = a - rng.normal(0.01, 0.01, 5)
    reference = scipy_stats.ttest_rel(a, b)
    test = stats.paired_t(list(a - b))
    assert test.n == 5 and test.mean == pytest.approx(float(np.mean(a - b)))
    assert test.p == pytest.approx(reference.pvalue, rel=1e-9)
    low, high = test.interval(0.95)
    expected = reference.confidence_interval(0.95)
    assert (low, high) == pytest.approx((expected.low, expected.high), rel=1e-9)


def test_holm_on_a_textbook_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([]) == []


def test_verdict_words_follow_the_holm_adjusted_p_and_agree_with_the_interval():
    clear_win = [0.05, 0.06, 0.04, 0.05, 0.055]
    clear_loss = [-x for x in clear_win]
    marginal = [0.03, -0.005, 0.02, 0.01, 0.004]  # alone p ≈ 0.13
    borderline = [0.012, 0.004, 0.002, 0.015, 0.008]  # alone p ≈ 0.027; third smallest: x2
    cells = [({"cell": name}, d) for name, d in
             [("win", clear_win), ("loss", clear_loss), ("marginal", marginal), ("border", borderline)]]
    rows = {row["cell"]: row for row in stats.family_verdicts(cells)}
    assert rows["border"]["p"] < 0.05 < rows["border"]["p_holm"]
    assert [rows[c]["verdict"] for c in ("win", "loss", "marginal", "border")] \
        == ["beats", "loses to", "ties", "ties"]
    for row in rows.values():
        excludes_zero = row["ci_low"] > 0 or row["ci_high"] < 0
        assert excludes_zero == (row["verdict"] != "ties"), row
        assert row["ci_low"] <= row["diff_mean"] <= row["ci_high"]


def test_one_seed_is_no_test_and_identical_differences_are_exact():
    [row] = stats.family_verdicts([({}, [0.2])])
    assert row["verdict"] == "ties" and row["ci_low"] is None and row["p_holm"] == 1.0
    [same] = stats.family_verdicts([({}, [0.01, 0.01, 0.01])])
    assert same["verdict"] == "beats" and same["ci_low"] == same["ci_high"] == 0.01
    assert stats.paired_differences({0: 0.9, 1: 0.8, 2: 0.7}, {1: 0.5, 0: 0.6}) == pytest.approx([0.3, 0.3])


def test_mean_interval_is_the_t_half_width():
    mean, half = stats.mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(scipy_stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3))


def test_every_cell_also_carries_its_plain_95_interval_labelled_apart_from_the_holm_one():
    borderline = [0.012, 0.004, 0.002, 0.015, 0.008]  # alone p ≈ 0.027
    cells = [({"cell": "border"}, borderline), ({"cell": "other"}, [0.03, -0.005, 0.02, 0.01, 0.004])]
    row = next(r for r in stats.family_verdicts(cells) if r["cell"] == "border")
    expected = scipy_stats.ttest_1samp(borderline, 0.0).confidence_interval(0.95)
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((expected.low, expected.high), abs=1e-4)
    assert row["ci95_low"] > 0 and row["verdict"] == "ties"  # 95 % excludes 0, Holm does not
    assert row["ci_level"] == pytest.approx(1 - 0.05 * row["p"] / row["p_holm"], abs=1e-6)
    assert row["ci_low"] < 0 < row["ci_high"]


def test_claim_size_p_values_are_scipys_one_sided_t_tests_against_the_margin():
    differences = [0.031, 0.024, 0.045, 0.018, 0.036]
    above, below = stats.one_sided_p(differences, 0.02)
    assert above == pytest.approx(scipy_stats.ttest_1samp(differences, 0.02, alternative="greater").pvalue,
                                  rel=1e-9)
    assert below == pytest.approx(scipy_stats.ttest_1samp(differences, 0.02, alternative="less").pvalue,
                                  rel=1e-9)
    assert stats.one_sided_p([0.5], 0.02) == (1.0, 1.0)  # one seed: no test


def test_claim_size_verdicts_say_at_least_less_than_or_undecided_after_holm_across_pairs():
    cells = [({"pair": "big"}, [0.05, 0.06, 0.045, 0.055, 0.05]),  # clearly above 2 points
             ({"pair": "small"}, [0.004, 0.0, 0.006, 0.002, 0.003]),  # clearly below
             ({"pair": "noisy"}, [0.06, -0.02, 0.03, 0.00, 0.04]),  # mean 2.2 points, wide
             ({"pair": "edge"}, [0.027, 0.021, 0.031, 0.022, 0.024])]  # alone p(above) ≈ 0.026
    rows = {row["pair"]: row for row in stats.claim_size_verdicts(cells)}
    greater = [scipy_stats.ttest_1samp(d, 0.02, alternative="greater").pvalue for _, d in cells]
    # Holm by hand on four p values: the k-th smallest times (5 − k), kept non-decreasing
    order = sorted(range(4), key=lambda i: greater[i])
    running, adjusted = 0.0, [0.0] * 4
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (4 - rank) * greater[index]))
        adjusted[index] = running
    for (labels, _), expected in zip(cells, adjusted, strict=True):
        assert rows[labels["pair"]]["p_above_holm"] == pytest.approx(expected, rel=1e-9)
    assert rows["big"]["verdict"] == "at least" and rows["small"]["verdict"] == "less than"
    assert rows["noisy"]["verdict"] == "undecided"
    assert rows["edge"]["p_above"] < 0.05 < rows["edge"]["p_above_holm"]  # x3 after Holm
    assert rows["edge"]["verdict"] == "undecided"
    assert all(row["margin"] == 0.02 for row in rows.values())
