"""`cmcd bench budget`: how long must students train before the main table compares trained ones?

Every distillation method of the paper benchmark and the supervised reference train at ¼, ½, 1, 2
and 4 × the paper benchmark's steps (supervised: × its own budget, SUPERVISED_BUDGET times the
distillation steps, still keeping its best validation epoch), on every pair × 3 seeds, with the
settings `cmcd bench tuning` chose (--quick: the defaults). Each run records its validation
accuracy (the weights it kept) and its test accuracy, so the report draws both curves.

The choice, on validation only: the smallest multiplier m at which doubling the budget gains the
best distillation method of every pair (the method with the highest mean validation accuracy at m)
less than 1 point of validation accuracy; when no such m exists, the largest multiplier, and the
report says so. results/budget.json records it under "choice"; `cmcd bench paper` and
`cmcd bench tuning` read it (`tuning.chosen_budget`) and scale their step counts by it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from cmcd.bench import paper as bench_paper
from cmcd.bench import runner as bench_runs
from cmcd.bench import tuning
from cmcd.eval import records
from cmcd.train.config import DistillConfig
from cmcd.train.distill import accuracy_run
from cmcd.viz import figures

NAME = "budget"
TEACHER = "ssl"
GAIN = 0.01  # doubling must gain the best method less than 1 point of validation accuracy


@dataclass(frozen=True)
class Plan:
    pairs: tuple[str, ...]
    methods: tuple[str, ...]
    multipliers: tuple[float, ...]  # x the paper benchmark's steps
    seeds: tuple[int, ...]
    steps: int | None = None  # None: the paper benchmark's (a default run's on all pairs)


FULL = Plan(pairs=bench_paper.BENCHMARK_PAIRS, methods=(*bench_paper.DISTILLATION, "supervised"),
            multipliers=(0.25, 0.5, 1.0, 2.0, 4.0), seeds=(0, 1, 2))
# CI: the pipeline and the file format on tiny runs; its choice means nothing.
QUICK = Plan(pairs=("digits-depth",), methods=("cmc", "l2"), multipliers=(0.5, 1.0, 2.0),
             seeds=(0,), steps=2)


def run_config(plan: Plan, pair: str, method: str, multiplier: float, seed: int,
               chosen: dict) -> DistillConfig:
    """A budget run: the paper benchmark's run of this method (its tuned settings, its step
    budget), trained for `multiplier` times as many steps, without step-3 fine-tuning."""
    paper_plan = dataclasses.replace(bench_paper.FULL, steps=plan.steps)
    base = bench_paper.run_config(paper_plan, pair, method, TEACHER, seed, chosen, bench_paper.QUICK_FINETUNE)
    return dataclasses.replace(base, steps=max(1, round(base.steps * multiplier)), finetune_steps=0)


def accuracy_job(study: str, config: dict) -> dict:
    return accuracy_run(DistillConfig.from_dict(config))


ACCURACY_RUNS = bench_runs.RunKind(accuracy_job, bench_runs.prepare, bench_runs.DISTILLATION.result)


def planned_runs(plan: Plan, chosen: dict) -> list[tuple[str, DistillConfig]]:
    return [(f"x{multiplier:g}", run_config(plan, pair, method, multiplier, seed, chosen))
            for pair in plan.pairs for method in plan.methods for multiplier in plan.multipliers
            for seed in plan.seeds]


def curves(runs: list[dict]) -> list[dict]:
    """Per pair, method and multiplier: mean validation and test accuracy over seeds, and n."""
    cells: dict[tuple, list[dict]] = {}
    for run in runs:
        config = run["config"]
        cells.setdefault((config["pair"], config["method"], float(run["study"][1:])), []).append(run)
    rows = []
    for (pair, method, multiplier), chosen in sorted(cells.items()):
        rows.append({"pair": pair, "method": method, "multiplier": multiplier, "n": len(chosen),
                     "steps": chosen[0]["config"]["steps"],
                     "validation": round(statistics.fmean(r["metrics"]["validation_accuracy"]
                                                          for r in chosen), 4),
                     "test": round(statistics.fmean(records.ACCURACY.read(r["metrics"]) for r in chosen), 4)})
    return rows


def _validation(rows: list[dict], pair: str, multiplier: float) -> dict[str, float]:
    return {r["method"]: r["validation"] for r in rows if r["pair"] == pair and r["multiplier"] == multiplier
            and r["method"] in bench_paper.DISTILLATION}


def best_on_validation(rows: list[dict], pair: str, multiplier: float) -> str:
    """The distillation method with the highest mean validation accuracy (ties: the first)."""
    here = _validation(rows, pair, multiplier)
    return max(here, key=here.get)


def choose(rows: list[dict]) -> dict:
    """The smallest multiplier at which doubling gains every pair's best method < 1 point on
    validation, else the largest; with each pair's best method and its gain from doubling."""
    multipliers = sorted({r["multiplier"] for r in rows})
    pair_names = sorted({r["pair"] for r in rows})
    for multiplier in multipliers:
        if 2 * multiplier not in multipliers:
            continue
        gains = {}
        for pair in pair_names:
            best = best_on_validation(rows, pair, multiplier)
            gain = _validation(rows, pair, 2 * multiplier)[best] - _validation(rows, pair, multiplier)[best]
            gains[pair] = {"best": best, "gain": round(gain, 4)}
        if all(entry["gain"] < GAIN for entry in gains.values()):
            return {"multiplier": multiplier, "converged": True, "gains": gains,
                    "reason": f"the smallest budget at which doubling gains every pair's best method "
                              f"less than {100 * GAIN:g} point of validation accuracy"}
    return {"multiplier": multipliers[-1], "converged": False, "gains": {},
            "reason": f"no budget up to x{multipliers[-1]:g} met the rule (doubling gains every pair's "
                      f"best method less than {100 * GAIN:g} point on validation): the largest budget"}


def panels(rows: list[dict], split: str) -> list[figures.Panel]:
    out = []
    for pair in dict.fromkeys(r["pair"] for r in rows):
        panel = figures.Panel(pair, "x the benchmark's steps", f"{split} accuracy", x_log=True)
        for method in dict.fromkeys(r["method"] for r in rows if r["pair"] == pair):
            mine = [r for r in rows if r["pair"] == pair and r["method"] == method]
            panel.series.append(figures.Series(method, [r["multiplier"] for r in mine],
                                               [r[split] for r in mine]))
        out.append(panel)
    return out


def curve_table(rows: list[dict]) -> list[str]:
    """Mean validation / test accuracy per pair and method (rows), one column per multiplier."""
    multipliers = sorted({r["multiplier"] for r in rows})
    lines = ["| pair | method | " + " | ".join(f"x{m:g}" for m in multipliers) + " |",
             "| --- | --- |" + " --- |" * len(multipliers)]
    for pair in dict.fromkeys(r["pair"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows if r["pair"] == pair):
            cells = {r["multiplier"]: f"{r['validation']:.3f} / {r['test']:.3f}" for r in rows
                     if r["pair"] == pair and r["method"] == method}
            row = " | ".join(cells.get(m, "—") for m in multipliers)
            lines.append(f"| {pair} | {method} | {row} |")
    return lines


def planned_count(settings: dict) -> int:
    """How many runs a study with these settings (budget.json's "settings") plans."""
    return math.prod(len(settings[axis]) for axis in ("pairs", "methods", "multipliers", "seeds"))


def complete_pairs(report: dict) -> tuple[str, ...]:
    """The pairs of a (possibly unfinished) study with every planned run done, in plan order."""
    settings = report["settings"]
    per_pair = planned_count(settings) // len(settings["pairs"])
    done: dict[str, int] = {}
    for run in report["runs"]:
        done[run["config"]["pair"]] = done.get(run["config"]["pair"], 0) + 1
    return tuple(pair for pair in settings["pairs"] if done.get(pair, 0) >= per_pair)


def markdown(report: dict) -> str:
    choice = report["choice"]
    return "\n".join([
        f"Device: {report['device']}; {len(report['runs'])} runs in {report['wall_s'] / 60:.1f} min; "
        "mean accuracy over seeds, validation / test.", "",
        f"Chosen budget: x{choice['multiplier']:g} ({choice['reason']}).", "",
        *curve_table(report["curves"])])


def tuned_settings(out: str | Path, reuse_recorded: bool) -> dict:
    """The tuned settings the study trains every method with: when resuming or reporting, those
    its own budget.json recorded when it began; else those of `cmcd bench tuning` (tuning.json).

    Tuning runs again at the budget this study chooses and rewrites tuning.json, so a study that
    re-read it on --resume would train, and tabulate, methods under settings of its own outcome."""
    path = Path(out) / f"{NAME}.json"
    if reuse_recorded and path.exists():
        recorded = json.loads(path.read_text())
        if not recorded.get("quick") and "chosen" in recorded.get("settings", {}):
            return recorded["settings"]["chosen"]
    return tuning.chosen_settings(out)[0]


def run(out: str = "results", quick: bool = False, seeds: int | None = None, workers: int = 1,
        resume: bool = False, report_only: bool = False, command: str = "",
        device: str = "auto") -> dict:
    plan = bench_runs.choose_plan(FULL, QUICK, quick, seeds)
    chosen = {} if quick else tuned_settings(out, reuse_recorded=resume or report_only)
    report = bench_runs.load_or_execute(
        NAME, plan, lambda p: planned_runs(p, chosen), out, quick=quick, workers=workers, resume=resume,
        report_only=report_only, command=command, device=device, kind=ACCURACY_RUNS,
        settings={**dataclasses.asdict(plan), "chosen": chosen, "teacher": TEACHER, "gain": GAIN})
    report = bench_runs.planned_only(report, planned_runs(plan, chosen))
    report["curves"] = curves(report["runs"])
    report["choice"] = choose(report["curves"])
    written = bench_runs.write_json_and_markdown(report, out, NAME, markdown(report))
    for split in ("validation", "test"):
        paths = figures.save(panels(report["curves"], split), f"Accuracy against training budget ({split})",
                             Path(out) / "figures" / f"budget-{split}", columns=3)
        written["written"] += [str(p) for p in paths]
    return written


def format_report(report: dict) -> str:
    return markdown(report) + "\nwrote " + ", ".join(report["written"])
