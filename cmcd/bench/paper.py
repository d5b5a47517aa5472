"""`cmcd bench paper`: does CMCD (CMC, CMD) beat label-free distillation, and where?

Two studies, every run with its own seed, all on the test split with settings fixed beforehand on
the validation split (the DistillConfig defaults, see scripts/tune_on_validation.py):

- main: every pair x every method (the distillation losses and the references `random`,
  `target-ssl` and `supervised`, the upper bound that reads all target labels) x seeds;
- regime: digits-sketch and digits-depth x teacher (ssl, ft) x pair budget (100, 500, 2,000, all) x
  cmc, cmd, cmc+l2, l2 x seeds.

Every method of a cell trains for the same number of optimiser steps: a default run's on all pairs.
Writes results/paper.json, results/paper.md and figures in results/figures/.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from cmcd.bench import runner as bench_runs
from cmcd.data import pairs
from cmcd.data.cache import atomic_write_bytes
from cmcd.eval import records
from cmcd.eval.records import ZERO_LABEL_HEAD, Metric
from cmcd.eval.results import group, mean_std
from cmcd.train.config import DistillConfig
from cmcd.train.objectives import METHODS
from cmcd.viz import figures

LABEL_FREE_BASELINES = ("l2", "crd", "socket")  # existing label-free distillation
CMCD = ("cmc", "cmd", "cmc+l2")
REFERENCES = {"random": "no training", "target-ssl": "target alone, no teacher",
              "supervised": "all target labels: upper bound"}
VERDICT_METRICS = (ZERO_LABEL_HEAD, records.R1_TARGET_TO_SOURCE)  # CMCD against L2, cell by cell
FEW_LABEL_CURVE = {0: ZERO_LABEL_HEAD, 1: records.FEW_LABEL_1, 5: records.FEW_LABEL_5,
                   10: records.FEW_LABEL_10}  # target labels per class -> accuracy


@dataclass(frozen=True)
class Plan:
    pairs: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    regime_pairs: tuple[str, ...]
    regime_teachers: tuple[str, ...]
    regime_budgets: tuple[int | None, ...]  # None: all pairs
    regime_methods: tuple[str, ...]
    steps: int | None = None  # None: a default run's steps on all of the pair's pairs
    teacher: str = "ft"


FULL = Plan(pairs=tuple(pairs.PAIRS), methods=METHODS, seeds=(0, 1, 2),
            regime_pairs=("digits-sketch", "digits-depth"), regime_teachers=("ssl", "ft"),
            regime_budgets=(100, 500, 2000, None), regime_methods=("cmc", "cmd", "cmc+l2", "l2"))
# CI: the whole pipeline and the file formats on tiny runs; its numbers mean nothing.
QUICK = Plan(pairs=("digits-depth",), methods=METHODS, seeds=(0,), regime_pairs=("digits-depth",),
             regime_teachers=("ssl", "ft"), regime_budgets=(100, None), regime_methods=("cmc", "l2"),
             steps=3)


def planned_runs(plan: Plan) -> list[tuple[str, DistillConfig]]:
    runs = []
    for pair in plan.pairs:
        steps = plan.steps or bench_runs.default_steps(pair)
        for method in plan.methods:
            for seed in plan.seeds:
                runs.append(("main", DistillConfig(pair=pair, method=method, teacher=plan.teacher,
                                                   steps=steps, seed=seed)))
    main = {bench_runs.run_key("main", config) for _, config in runs}
    for pair in plan.regime_pairs:
        steps = plan.steps or bench_runs.default_steps(pair)
        for teacher in plan.regime_teachers:
            for budget in plan.regime_budgets:
                for method in plan.regime_methods:
                    for seed in plan.seeds:
                        config = DistillConfig(pair=pair, method=method, teacher=teacher,
                                               n_pairs=budget, steps=steps, seed=seed)
                        if bench_runs.run_key("main", config) not in main:  # the main table has it
                            runs.append(("regime", config))
    return runs


def regime_runs(runs: list[dict]) -> list[dict]:
    """The regime study's runs, with the main-table runs that fill its (ft, all pairs) cells."""
    regime = [r for r in runs if r["study"] == "regime"]
    regime_pairs = {r["config"]["pair"] for r in regime}
    regime_methods = {r["config"]["method"] for r in regime}
    borrowed = [r for r in runs if r["study"] == "main" and r["config"]["pair"] in regime_pairs
                and r["config"]["method"] in regime_methods]
    return borrowed + regime


def budget_label(n_pairs) -> str:
    return "all" if n_pairs is None else f"{n_pairs:,}"


# --- tables ---------------------------------------------------------------------------------------

def _values(runs: list[dict], metric: Metric) -> list[float]:
    return [metric.read(run["metrics"]) for run in runs]


def _best_rows(stats: dict[str, tuple[float, float]], lower_is_better: bool) -> set[str]:
    """The row whose mean leads the runner-up by more than either one's standard deviation."""
    ranked = sorted(stats, key=lambda row: stats[row][0], reverse=not lower_is_better)
    if len(ranked) < 2:
        return set()
    (best_mean, best_std), (next_mean, next_std) = stats[ranked[0]], stats[ranked[1]]
    return {ranked[0]} if abs(best_mean - next_mean) > max(best_std, next_std) else set()


def _format(mean: float, std: float, bold: bool) -> str:
    text = f"{mean:.3f} ± {std:.3f}"
    return f"**{text}**" if bold else text


def main_table(runs: list[dict], pair: str) -> str:
    by_method = group([r for r in runs if r["study"] == "main" and r["config"]["pair"] == pair], "method")
    methods = [m for m in METHODS if (m,) in by_method]
    columns = records.PAPER_TABLE
    lines = ["| method | " + " | ".join(column.heading for column in columns) + " |",
             "| --- |" + " --- |" * len(columns)]
    stats = {column: {m: mean_std(_values(by_method[(m,)], column)) for m in methods}
             for column in columns}
    best = {column: _best_rows({m: s for m, s in stats[column].items() if m != "supervised"},
                               not column.higher_is_better) for column in columns}
    for m in methods:
        label = f"{m} ({REFERENCES[m]})" if m in REFERENCES else m
        cells = [_format(*stats[column][m], m in best[column]) for column in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def regime_table(runs: list[dict], pair: str, teacher: str) -> str:
    cell_runs = [r for r in runs if r["config"]["pair"] == pair and r["config"]["teacher"] == teacher]
    by_cell = group(cell_runs, "method", "n_pairs")
    budgets = sorted({r["config"]["n_pairs"] for r in cell_runs}, key=lambda b: (b is None, b or 0))
    methods = [m for m in METHODS if any(key[0] == m for key in by_cell)]
    lines = ["| method | " + " | ".join(f"{budget_label(b)} pairs" for b in budgets) + " |",
             "| --- |" + " --- |" * len(budgets)]
    stats = {b: {m: mean_std(_values(by_cell.get((m, b), []), ZERO_LABEL_HEAD)) for m in methods}
             for b in budgets}
    best = {b: _best_rows(stats[b], False) for b in budgets}
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_format(*stats[b][m], m in best[b]) for b in budgets) + " |")
    return "\n".join(lines)


def versus(a: list[float], b: list[float]) -> dict:
    """Mean of a minus mean of b, called a win or a loss only beyond the larger standard deviation."""
    (mean_a, std_a), (mean_b, std_b) = mean_std(a), mean_std(b)
    spread, difference = max(std_a, std_b), mean_a - mean_b
    verdict = "beats" if difference > spread else "loses to" if difference < -spread else "ties"
    return {"difference": round(difference, 4), "spread": round(spread, 4), "verdict": verdict}


def compare(runs: list[dict], method: str, baseline: str, metric: Metric) -> dict | None:
    """method against baseline on one metric: the difference of means and the verdict."""
    a = _values([r for r in runs if r["config"]["method"] == method], metric)
    b = _values([r for r in runs if r["config"]["method"] == baseline], metric)
    return versus(a, b) if a and b else None


def verdicts(runs: list[dict]) -> list[dict]:
    """Each CMCD method against L2, per main-table pair and per regime cell, on two metrics."""
    rows = []
    main = [r for r in runs if r["study"] == "main"]
    cells = [("main", pair, "ft", None, [r for r in main if r["config"]["pair"] == pair])
             for pair in dict.fromkeys(r["config"]["pair"] for r in main)]
    regime = regime_runs(runs)
    for (pair, teacher, budget), cell in group(regime, "pair", "teacher", "n_pairs").items():
        cells.append(("regime", pair, teacher, budget, cell))
    for study, pair, teacher, budget, cell in cells:
        for method in CMCD:
            for metric in VERDICT_METRICS:
                result = compare(cell, method, "l2", metric)
                if result:
                    rows.append({"study": study, "pair": pair, "teacher": teacher, "n_pairs": budget,
                                 "method": method, "metric": metric.name, **result})
    return rows


def _best_mean(runs: list[dict], methods, metric: Metric) -> tuple[str, list[float]] | None:
    """The method (of `methods`) with the highest mean, and its values."""
    candidates = {m: _values([r for r in runs if r["config"]["method"] == m], metric) for m in methods}
    candidates = {m: v for m, v in candidates.items() if v}
    if not candidates:
        return None
    best = max(candidates, key=lambda m: mean_std(candidates[m])[0])
    return best, candidates[best]


def claim_table(runs: list[dict], metric: Metric = ZERO_LABEL_HEAD) -> str:
    """Claim 1 per main-table pair: each CMCD loss against L2, and the best of CMC/CMD against
    the best existing label-free method, as 'difference (verdict)'."""
    main = [r for r in runs if r["study"] == "main"]
    lines = ["| pair | cmc − l2 | cmd − l2 | cmc+l2 − l2 | best of cmc, cmd − best of l2, crd, socket |",
             "| --- | --- | --- | --- | --- |"]
    for pair in dict.fromkeys(r["config"]["pair"] for r in main):
        cell = [r for r in main if r["config"]["pair"] == pair]
        cells = []
        for method in CMCD:
            result = compare(cell, method, "l2", metric)
            cells.append("–" if result is None else f"{result['difference']:+.3f} ({result['verdict']})")
        ours = _best_mean(cell, ("cmc", "cmd"), metric)
        theirs = _best_mean(cell, LABEL_FREE_BASELINES, metric)
        if ours and theirs:
            result = versus(ours[1], theirs[1])
            cells.append(f"{ours[0]} − {theirs[0]}: {result['difference']:+.3f} ({result['verdict']})")
        else:
            cells.append("–")
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_counts(rows: list[dict]) -> str:
    lines = ["| method vs l2 | metric | beats | ties | loses to |", "| --- | --- | --- | --- | --- |"]
    for method in CMCD:
        for metric in VERDICT_METRICS:
            chosen = [r for r in rows if r["method"] == method and r["metric"] == metric.name]
            if chosen:
                counts = [sum(r["verdict"] == v for r in chosen) for v in ("beats", "ties", "loses to")]
                lines.append(f"| {method} | {metric.name} | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    runs = report["runs"]
    seeds = len({r["config"]["seed"] for r in runs})
    parts = [f"Device: {report['device']}; {len(runs)} runs in {report['wall_s'] / 60:.1f} min "
             f"({report.get('workers', 1)} worker processes); mean ± standard deviation over "
             f"{seeds} seed(s); **bold**: the best of a column, only where its lead over the "
             f"runner-up exceeds both one's standard deviations (the supervised upper bound is "
             f"never marked).", ""]
    for pair in dict.fromkeys(r["config"]["pair"] for r in runs if r["study"] == "main"):
        parts += [f"#### {pair} (teacher ft, all pairs)", "", main_table(runs, pair), ""]
    regime = regime_runs(runs)
    for pair in sorted({r["config"]["pair"] for r in regime}):
        for teacher in sorted({r["config"]["teacher"] for r in regime if r["config"]["pair"] == pair}):
            parts += [f"#### {pair}, teacher {teacher}: zero-label head accuracy against pair budget",
                      "", regime_table(regime, pair, teacher), ""]
    rows = verdicts(runs)
    parts += ["#### Claim 1: zero-label head accuracy, differences of means (verdict against the "
              "larger of the two standard deviations)", "", claim_table(runs), "",
              "#### CMCD against L2, cell by cell (main pairs and regime cells)", "",
              verdict_counts(rows), ""]
    return "\n".join(parts)


# --- figures ---------------------------------------------------------------------------------------

def few_label_panels(runs: list[dict]) -> list[figures.Panel]:
    panels = []
    main = [r for r in runs if r["study"] == "main"]
    for pair in dict.fromkeys(r["config"]["pair"] for r in main):
        panel = figures.Panel(pair, "target labels per class (0: teacher head)", "test accuracy")
        for (method,), chosen in group([r for r in main if r["config"]["pair"] == pair], "method").items():
            stats = [mean_std(_values(chosen, metric)) for metric in FEW_LABEL_CURVE.values()]
            panel.series.append(figures.Series(method, list(FEW_LABEL_CURVE), [s[0] for s in stats],
                                               [s[1] for s in stats]))
        panels.append(panel)
    return panels


def budget_panels(runs: list[dict]) -> list[figures.Panel]:
    panels = []
    for (pair, teacher), cell in group(regime_runs(runs), "pair", "teacher").items():
        panel = figures.Panel(f"{pair}, teacher {teacher}", "distillation pairs", "zero-label head accuracy",
                              x_log=True)
        for (method,), chosen in group(cell, "method").items():
            by_budget = group(chosen, "n_pairs")
            budgets = sorted(by_budget, key=lambda b: (b[0] is None, b[0] or 0))
            stats = [mean_std(_values(by_budget[b], ZERO_LABEL_HEAD)) for b in budgets]
            x = [r["metrics"]["n_pairs"] for r in (by_budget[b][0] for b in budgets)]
            panel.series.append(figures.Series(method, x, [s[0] for s in stats], [s[1] for s in stats]))
        panels.append(panel)
    return sorted(panels, key=lambda p: p.title)


def write_outputs(report: dict, out: Path) -> list[Path]:
    out = Path(out)
    atomic_write_bytes(out / "paper.md", markdown(report).encode())
    written = [out / "paper.json", out / "paper.md"]
    written += figures.save(few_label_panels(report["runs"]), "Zero- and few-label accuracy (test)",
                            out / "figures" / "paper-few-label", columns=3)
    if any(r["study"] == "regime" for r in report["runs"]):
        written += figures.save(budget_panels(report["runs"]), "Accuracy against pair budget",
                                out / "figures" / "paper-budget", columns=2)
    return written


def run(out: str = "results", quick: bool = False, seeds: int | None = None, workers: int = 1,
        resume: bool = False, report_only: bool = False, command: str = "",
        device: str = "auto") -> dict:
    plan = bench_runs.choose_plan(FULL, QUICK, quick, seeds)
    report = bench_runs.load_or_execute(
        "paper", plan, planned_runs, out, quick=quick, workers=workers, resume=resume,
        report_only=report_only, command=command, device=device,
        settings={**dataclasses.asdict(plan), "defaults": DistillConfig().to_dict()})
    report["written"] = [str(p) for p in write_outputs(report, out)]
    return report


def format_report(report: dict) -> str:
    return markdown(report) + "\nwrote " + ", ".join(report["written"])
