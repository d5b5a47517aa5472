"""The claim's size: does CMC or CMD gain at least 2 points over the best label-free baseline?

The paper says "+2–3 % over existing label-free algorithms". For each pair of the main table
(teacher ssl, test accuracy), the baseline to beat is the *best* label-free baseline of that pair,
chosen on validation, never on test:

1. from the paper runs themselves, when they record their validation accuracy (runs made since
   issue 23 do: `validation_accuracy`, the validation accuracy of the weights the run kept), the
   baseline with the highest mean over seeds;
2. otherwise from `results/tuning.json`: each baseline's validation accuracy under the settings
   the sweep chose for it, on this pair when the sweep ran on it, else its mean over the sweep's
   pairs (the sweep runs three of the five pairs, one seed of its own).

Then, per pair and method, a one-sided paired t test of "mean gain ≥ 2 points" each way
(`cmcd.eval.stats.claim_size_verdicts`), Holm across the pairs of each method: "at least",
"less than" or "undecided". The rows join paper.json's verdicts with `"kind": "claim-size"`.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from cmcd.eval import records, stats

METHODS = ("cmc", "cmd")
FAMILY = "claim size"
FROM_RUNS = "validation accuracy of the paper runs (mean over seeds)"
FROM_TUNING_PAIR = "tuning.json: the chosen settings' validation accuracy on this pair"
FROM_TUNING_MEAN = "tuning.json: the chosen settings' mean validation accuracy over the tuning pairs"


def _main_runs(runs: list[dict], pair: str) -> list[dict]:
    return [r for r in runs if r["study"] == "main" and r["config"]["pair"] == pair]


def _test_accuracy(runs: list[dict], method: str) -> dict[int, float]:
    return {r["config"]["seed"]: records.ACCURACY.read(r["metrics"]) for r in runs
            if r["config"]["method"] == method}


def _from_runs(runs: list[dict], baselines) -> dict[str, float]:
    scores = {}
    for baseline in baselines:
        values = [r["metrics"]["validation_accuracy"] for r in runs
                  if r["config"]["method"] == baseline and "validation_accuracy" in r["metrics"]]
        if values:
            scores[baseline] = statistics.fmean(values)
    return scores


def _tuning_row(tuning: dict, method: str) -> dict | None:
    chosen = tuning.get("chosen", {}).get(method)
    rows = tuning.get("candidates", {}).get(method, [])
    return next((row for row in rows if row["settings"] == chosen), None)


def _from_tuning(tuning: dict, pair: str, baselines) -> tuple[dict[str, float], str]:
    scores, source = {}, FROM_TUNING_PAIR
    for baseline in baselines:
        row = _tuning_row(tuning, baseline)
        if row is None or not row["validation_accuracy"]:
            continue
        if pair in row["validation_accuracy"]:
            scores[baseline] = row["validation_accuracy"][pair]
        else:
            scores[baseline], source = statistics.fmean(row["validation_accuracy"].values()), FROM_TUNING_MEAN
    return scores, source


def best_baseline(runs: list[dict], pair: str, baselines, tuning: dict | None) -> dict | None:
    """{"baseline", "validation_accuracy", "chosen_on"} of the pair's best baseline on validation,
    among the baselines with test runs; None when no validation figure exists for any of them."""
    present = [b for b in baselines if any(r["config"]["method"] == b for r in _main_runs(runs, pair))]
    scores, source = _from_runs(_main_runs(runs, pair), present), FROM_RUNS
    if len(scores) < len(present) and tuning is not None:
        scores, source = _from_tuning(tuning, pair, present)
    if not scores:
        return None
    best = max(scores, key=scores.get)
    return {"baseline": best, "validation_accuracy": round(scores[best], 4), "chosen_on": source}


def load_tuning(out: str | Path) -> dict | None:
    path = Path(out) / "tuning.json"
    return json.loads(path.read_text()) if path.exists() else None


def claim_verdicts(runs: list[dict], baselines, tuning: dict | None) -> list[dict]:
    """One claim-size row per pair and method (teacher ssl, test accuracy), Holm per method."""
    pairs = dict.fromkeys(r["config"]["pair"] for r in runs if r["study"] == "main")
    chosen = {pair: best_baseline(runs, pair, baselines, tuning) for pair in pairs}
    rows = []
    for method in METHODS:
        cells = []
        for pair, best in chosen.items():
            cell = _main_runs(runs, pair)
            differences = [] if best is None else stats.paired_differences(
                _test_accuracy(cell, method), _test_accuracy(cell, best["baseline"]))
            if differences:
                labels = {"kind": "claim-size", "family": FAMILY, "pair": pair, "teacher": "ssl",
                          "metric": records.ACCURACY.name, "method": method, "baseline": best["baseline"],
                          "baseline_validation_accuracy": best["validation_accuracy"],
                          "baseline_chosen_on": best["chosen_on"]}
                cells.append((labels, differences))
        rows += stats.claim_size_verdicts(cells)
    return rows


def _points(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f}"


def _cell(row: dict) -> str:
    return (f"{_points(row['diff_mean'])} [{_points(row['ci95_low'])}, {_points(row['ci95_high'])}], "
            f"{row['p_above_holm']:.3f} / {row['p_below_holm']:.3f}, {row['verdict']}")


def table(rows: list[dict]) -> str:
    """Pairs down; per method the gain over the pair's best baseline in points, its 95 % t
    interval, the Holm-adjusted p of "gain > 2 points" and of "gain < 2 points", and the verdict."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = ["| pair | best baseline (validation) | " + " | ".join(
        f"{m} − best [95 %], p_holm of > 2 / < 2 points, verdict" for m in methods) + " |",
        "| --- | --- |" + " --- |" * len(methods)]
    for pair in dict.fromkeys(r["pair"] for r in rows):
        of_pair = {r["method"]: r for r in rows if r["pair"] == pair}
        first = next(iter(of_pair.values()))
        cells = [_cell(of_pair[m]) if m in of_pair else "–" for m in methods]
        lines.append(f"| {pair} | {first['baseline']} ({first['baseline_validation_accuracy']:.3f}) | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def sentence(rows: list[dict]) -> str:
    """How many pairs the paper's "+2–3 %" holds on, per method, and against which baselines."""
    if not rows:
        return ""
    parts = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        counts = {word: sum(r["verdict"] == word for r in mine) for word in stats.CLAIM_VERDICTS}
        against = ", ".join(f"{b} on {sum(r['baseline'] == b for r in mine)}"
                            for b in dict.fromkeys(r["baseline"] for r in mine))
        parts.append(f"{method} gains at least 2 points on {counts['at least']} of {len(mine)} pairs, "
                     f"less than 2 points on {counts['less than']} and is undecided on "
                     f"{counts['undecided']} (mean gains {_points(min(r['diff_mean'] for r in mine))} to "
                     f"{_points(max(r['diff_mean'] for r in mine))} points; best baseline {against})")
    sources = {}
    for row in rows:
        sources.setdefault(row["baseline_chosen_on"], {})[row["pair"]] = None
    chosen_on = "; ".join(f"{source} ({', '.join(pairs)})" for source, pairs in sources.items())
    return ("The paper's \"+2–3 %\" against the best label-free baseline of each pair: " + "; ".join(parts)
            + f". Best baseline chosen on validation: {chosen_on}.")
