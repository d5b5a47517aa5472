"""`cmcd bench paper`: does CMCD (CMC, CMD) beat label-free distillation, in the paper's setting?

- main table, the paper's setting: the `ssl` teacher (step 1 is self-supervised: SimCLR, then a
  linear head on the source labels), every pair x the paper's losses (cmc, cmd), the label-free
  baselines (l2, crd, socket, rkd, pkt, affinity), the project's own cmc+l2 (reported
  separately) and the references `random` (no training) and `supervised` (all target labels) x 5 seeds;
- ablation: the `ft` teacher (fine-tuned with source labels), the nine distillation methods x 3
  seeds.

Every distillation method runs with the settings `cmcd bench tuning` chose for it on the validation
split, with the same budget of configurations for each (results/tuning.json; --quick uses the
defaults), and for the same number of optimiser steps: a default run's on all pairs, times the
budget `cmcd bench budget` chose on validation (results/budget.json; 1 without it). `supervised`
trains its own head with augmentation for SUPERVISED_BUDGET times that many steps, keeping the
weights of its best validation epoch (early stopping), and reports its own head's test accuracy.
Every run also fine-tunes the whole student on 1/5/10 labels per class (few_label_ft_acc, the
schedule chosen by the tuning benchmark) beside the linear probes.

`target-ssl` (SimCLR on the target alone) is left out of the tables: at the teacher's SimCLR budget
it costs more CPU time than the rest of the main table; one short timed run (study "cost") gives
the figure the report states. The pair-budget (regime) study of earlier versions is gone too: the
theory benchmark varies pair budgets.

Verdicts (`cmcd.eval.stats`): per-seed paired differences, t intervals, Holm's correction across
each verdict table (a family: one teacher, one metric, and either the paper's losses against the
baselines or ours against them), so no cell is counted twice and ours never pads the paper's
count. Writes results/paper.json (runs, settings and a top-level "verdicts" list), results/paper.md
and figures in results/figures/.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from pathlib import Path

from cmcd.bench import claim_size, tuning
from cmcd.bench import runner as bench_runs
from cmcd.data.cache import atomic_write_bytes, atomic_write_json
from cmcd.eval import records, stats
from cmcd.eval.records import Metric
from cmcd.eval.results import group
from cmcd.modalities import pairs
from cmcd.models.teacher import load_teacher
from cmcd.train.config import DistillConfig
from cmcd.viz import figures

PAPER_LOSSES = ("cmc", "cmd")
BASELINES = ("l2", "crd", "socket", "rkd", "pkt", "affinity")  # existing label-free distillation
OURS = ("cmc+l2",)
DISTILLATION = (*PAPER_LOSSES, *BASELINES, *OURS)
REFERENCES = {"random": "no training", "supervised": "all target labels, own head: upper bound"}
# Families of verdicts: (name, methods, baselines)
# (ours against cmc: does the L2 term add anything to CMC?)
FAMILIES = (("paper's losses", PAPER_LOSSES, BASELINES), ("ours", OURS, (*BASELINES, "cmc")))
VERDICT_METRICS = (records.ACCURACY, records.FEW_LABEL_FT_10)
SUPERVISED_BUDGET = 4  # x the distillation steps, with the best validation epoch kept
STUDIES = {"main": "ssl", "ablation": "ft"}  # study -> its teacher
FEW_LABEL_CURVES = {"probe": (records.ACCURACY, records.FEW_LABEL_1, records.FEW_LABEL_5,
                              records.FEW_LABEL_10),
                    "fine-tuned": (records.ACCURACY, records.FEW_LABEL_FT_1, records.FEW_LABEL_FT_5,
                                   records.FEW_LABEL_FT_10)}


@dataclass(frozen=True)
class Plan:
    pairs: tuple[str, ...]
    methods: tuple[str, ...]  # main table, teacher ssl
    seeds: tuple[int, ...]
    ablation_methods: tuple[str, ...]  # teacher ft
    ablation_seeds: tuple[int, ...]
    steps: int | None = None  # None: a default run's steps on all of the pair's pairs
    budget: float = 1.0  # x those steps: the budget `cmcd bench budget` chose
    cost_pair: str = "digits-depth"  # target-ssl's timed run
    cost_steps: int = 40


# Every registered pair, and the spoken digits as real people recorded them in every split (the
# one target made of real recordings; pairs.RECORDED).
BENCHMARK_PAIRS = (*pairs.PAIRS, f"digits-audio{pairs.RECORDED}")
FULL = Plan(pairs=BENCHMARK_PAIRS, methods=(*DISTILLATION, *REFERENCES), seeds=tuple(range(5)),
            ablation_methods=DISTILLATION, ablation_seeds=tuple(range(3)))
# CI: the whole pipeline and the file formats on tiny runs; its numbers mean nothing.
QUICK = Plan(pairs=("digits-depth",), methods=("cmc", "l2", "cmc+l2", *REFERENCES), seeds=(0,),
             ablation_methods=("cmc", "l2"), ablation_seeds=(0,), steps=3, cost_steps=2)
QUICK_FINETUNE = {"steps": 1, "lr": 1e-4}
# Quick runs use a narrow student: their cost is evaluation (few-label fine-tuning on every test item).
QUICK_CHOSEN = {method: {"width": 4} for method in sorted({*QUICK.methods, *QUICK.ablation_methods})}


def with_seeds(plan: Plan, seeds: int | None) -> Plan:
    """`seeds` seeds for the main table and at most 3 for the ablation."""
    if not seeds:
        return plan
    return dataclasses.replace(plan, seeds=tuple(range(seeds)), ablation_seeds=tuple(range(min(seeds, 3))))


def run_config(plan: Plan, pair: str, method: str, teacher: str, seed: int, chosen: dict,
               finetune: dict) -> DistillConfig:
    """A benchmark run: the method's tuned settings, the shared step budget (supervised: its own),
    and step-3 fine-tuning."""
    steps = max(1, round((plan.steps or bench_runs.default_steps(pair)) * plan.budget))
    if method == "supervised":
        steps *= SUPERVISED_BUDGET
    return DistillConfig.from_flat(pair=pair, method=method, teacher=teacher, steps=steps, seed=seed,
                                   finetune_steps=finetune["steps"], finetune_lr=finetune["lr"],
                                   **chosen.get(method, {}))


def planned_runs(plan: Plan, chosen: dict, finetune: dict) -> list[tuple[str, DistillConfig]]:
    runs = [("main", run_config(plan, pair, method, "ssl", seed, chosen, finetune))
            for pair in plan.pairs for method in plan.methods for seed in plan.seeds]
    runs += [("ablation", run_config(plan, pair, method, "ft", seed, chosen, finetune))
             for pair in plan.pairs for method in plan.ablation_methods for seed in plan.ablation_seeds]
    runs.append(("cost", DistillConfig(pair=plan.cost_pair, method="target-ssl", teacher="ssl",
                                       steps=plan.cost_steps, seed=0)))
    return runs


# --- reading runs ----------------------------------------------------------------------------------

def study_runs(runs: list[dict], study: str, pair: str | None = None) -> list[dict]:
    return [r for r in runs if r["study"] == study and (pair is None or r["config"]["pair"] == pair)]


def by_seed(runs: list[dict], method: str, metric: Metric) -> dict[int, float]:
    return {r["config"]["seed"]: metric.read(r["metrics"]) for r in runs if r["config"]["method"] == method}


def pairs_of(runs: list[dict], study: str) -> list[str]:
    return list(dict.fromkeys(r["config"]["pair"] for r in study_runs(runs, study)))


def methods_of(runs: list[dict]) -> list[str]:
    present = {r["config"]["method"] for r in runs}
    return [m for m in (*DISTILLATION, *REFERENCES) if m in present]


# --- verdicts --------------------------------------------------------------------------------------

def family_cells(runs: list[dict], study: str, methods, baselines, metric: Metric) -> list[tuple]:
    """(labels, per-seed differences) of every (pair, method, baseline) cell with runs of both."""
    cells = []
    for pair in pairs_of(runs, study):
        cell_runs = study_runs(runs, study, pair)
        for method in methods:
            for baseline in baselines:
                differences = stats.paired_differences(by_seed(cell_runs, method, metric),
                                                       by_seed(cell_runs, baseline, metric))
                if differences:
                    labels = {"pair": pair, "teacher": STUDIES[study], "metric": metric.name,
                              "method": method, "baseline": baseline}
                    cells.append((labels, differences))
    return cells


def verdicts(runs: list[dict]) -> list[dict]:
    """Every verdict cell of every family, each family Holm-corrected on its own."""
    rows = []
    for study in STUDIES:
        for family, methods, baselines in FAMILIES:
            for metric in VERDICT_METRICS:
                cells = family_cells(runs, study, methods, baselines, metric)
                rows += [{"kind": "difference", **row, "family": family}
                         for row in stats.family_verdicts(cells)]
    return rows


def verdict_count(rows: list[dict], method: str, baseline: str) -> dict[str, int]:
    chosen = [r for r in rows if r["method"] == method and r["baseline"] == baseline]
    return {"cells": len(chosen), **{word: sum(r["verdict"] == word for r in chosen)
                                     for word in stats.VERDICTS}}


def verdict_sentence(rows: list[dict], method: str, baseline: str) -> str:
    """'cmc beats l2 on 3 of 5 pairs, ties on 2 and loses on 0', counted from the rows."""
    count = verdict_count(rows, method, baseline)
    return (f"{method} beats {baseline} on {count['beats']} of {count['cells']} pairs, ties on "
            f"{count['ties']} and loses on {count['loses to']}")


# --- tables ----------------------------------------------------------------------------------------

def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    mean, half = stats.mean_interval(values)
    return f"{mean:.3f}" if half != half else f"{mean:.3f} ± {half:.3f}"  # half != half: one seed


def _label(method: str) -> str:
    if method in REFERENCES:
        return f"{method} ({REFERENCES[method]})"
    return f"{method} (ours)" if method in OURS else method


def results_table(runs: list[dict], study: str, pair: str) -> str:
    """Mean ± 95% t half-width over seeds of every column, one row per method."""
    cell_runs = study_runs(runs, study, pair)
    by_method = group(cell_runs, "method")
    columns = records.PAPER_TABLE
    lines = ["| method | " + " | ".join(column.heading for column in columns) + " |",
             "| --- |" + " --- |" * len(columns)]
    for method in methods_of(cell_runs):
        chosen = by_method[(method,)]
        cells = ["n/a" if method == "supervised" and column in records.TEACHER_SPACE
                 else _cell([column.read(r["metrics"]) for r in chosen]) for column in columns]
        lines.append(f"| {_label(method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f}"


def verdict_table(rows: list[dict], methods, baselines) -> str:
    """Pairs down, comparisons across: 'difference [95 % t interval] p_holm verdict' in points."""
    comparisons = [(m, b) for m in methods for b in baselines
                   if any(r["method"] == m and r["baseline"] == b for r in rows)]
    lines = ["| pair | " + " | ".join(f"{m} − {b}" for m, b in comparisons) + " |",
             "| --- |" + " --- |" * len(comparisons)]
    for pair in dict.fromkeys(r["pair"] for r in rows):
        cells = []
        for method, baseline in comparisons:
            row = next((r for r in rows if (r["pair"], r["method"], r["baseline"])
                        == (pair, method, baseline)), None)
            cells.append("–" if row is None else f"{_signed(row['diff_mean'])} [{_signed(row['ci95_low'])}, "
                         f"{_signed(row['ci95_high'])}] {row['p_holm']:.3f} {row['verdict']}")
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def family_summary(rows: list[dict], methods, baselines) -> str:
    """One generated sentence per comparison of a family."""
    sentences = [verdict_sentence(rows, m, b) for m in methods for b in baselines
                 if verdict_count(rows, m, b)["cells"]]
    return "; ".join(sentences) + "." if sentences else ""


def supervised_check(runs: list[dict]) -> str:
    """Whether the supervised reference is at least the best distilled method on every pair."""
    margins = []
    for pair in pairs_of(runs, "main"):
        cell = study_runs(runs, "main", pair)
        means = {m: statistics.fmean(v.values()) for m in methods_of(cell)
                 if (v := by_seed(cell, m, records.ACCURACY))}
        distilled = {m: mean for m, mean in means.items() if m in DISTILLATION}
        if "supervised" in means and distilled:
            best = max(distilled, key=distilled.get)
            margins.append((pair, best, means["supervised"] - distilled[best]))
    if not margins:
        return ""
    held = sum(margin >= -0.005 for _, _, margin in margins)
    pair, best, smallest = min(margins, key=lambda m: m[2])
    return (f"The supervised reference's accuracy is at least the best distilled method's (within "
            f"0.5 point) on {held} of {len(margins)} pairs; its smallest lead is "
            f"{_signed(smallest)} points, on {pair} (against {best}).")


def cost_note(runs: list[dict]) -> str:
    """Why target-ssl is not in the tables, from its timed run and the main table's own runs."""
    cost = study_runs(runs, "cost")
    main = study_runs(runs, "main")
    if not cost or not main:
        return ""
    run = cost[0]["metrics"]
    per_step = run["train_s"] / max(1, run["steps"])
    meta = load_teacher(pairs.get_spec(run["pair"]).dataset, "ssl").metadata
    config = meta["config"]
    teacher_steps = config["ssl_epochs"] * (meta["train_items"] // config["batch_size"])
    table_runs = len({(r["config"]["pair"], r["config"]["seed"]) for r in main})
    main_s, one_run_s = sum(r["metrics"]["wall_s"] for r in main), per_step * teacher_steps
    return (f"`target-ssl` (SimCLR on the target alone) is not in the tables: a timed run on "
            f"{run['pair']} took {per_step:.2f} s per SimCLR step, so the {run['pair'].split('-')[0]} "
            f"teacher's budget of {teacher_steps:,} steps would take about {one_run_s / 60:.0f} "
            f"min per run and {one_run_s * table_runs / 3600:.1f} h for the table's "
            f"{table_runs} (pair, seed) cells, against {main_s / 3600:.1f} h of run time for the whole "
            f"main table (same device, {cost[0]['metrics']['device']}).")


def settings_note(report: dict) -> str:
    """The tuned settings and the fine-tuning schedule every run used."""
    settings = report["settings"]
    chosen = ", ".join(f"{method} {_flat(values)}" for method, values in settings["chosen"].items()
                       if method in DISTILLATION) or "every method at its defaults"
    finetune = settings["finetune"]
    source = "defaults (--quick)" if report.get("quick") else "chosen on validation, results/tuning.json"
    budget = f" Training budget: {settings['budget']['why']}." if "budget" in settings else ""
    return (f"Settings ({source}): {chosen}. Step-3 fine-tuning: {finetune['steps']} full-batch "
            f"steps at peak lr {finetune['lr']:g}, 5 draws per k." + budget)


def _flat(values: dict) -> str:
    return "(" + ", ".join(f"{k} {v}" for k, v in values.items()) + ")" if values else "(defaults)"


def cost_of_finetuning(runs: list[dict]) -> str:
    seconds = [r["metrics"]["finetune_s"] for r in study_runs(runs, "main") if "finetune_s" in r["metrics"]]
    if not seconds:
        return ""
    return (f"Fine-tuning (15 fine-tunings per run) added {statistics.fmean(seconds):.1f} s per run on "
            f"average (from {min(seconds):.1f} to {max(seconds):.1f} s).")


def _study_section(report: dict, study: str, heading: str) -> list[str]:
    runs, rows = report["runs"], [r for r in report["verdicts"] if r["teacher"] == STUDIES[study]]
    seeds = len({r["config"]["seed"] for r in study_runs(runs, study)})
    if not seeds:
        return [f"### {heading}", "", "No runs yet.", ""]
    parts = [f"### {heading}", "", f"Mean ± 95% t half-width over {seeds} seed{'s' * (seeds != 1)}; "
             f"accuracy: {records.ACCURACY.label}.", ""]
    for pair in pairs_of(runs, study):
        parts += [f"#### {pair} (teacher {STUDIES[study]})", "", results_table(runs, study, pair), ""]
    for family, methods, baselines in FAMILIES:
        for metric in VERDICT_METRICS:
            chosen = [r for r in rows if r["family"] == family and r["metric"] == metric.name]
            if chosen:
                parts += [f"#### Verdicts, {family}: {metric.heading} (points [95 % t interval], "
                          f"Holm-adjusted p over {len(chosen)} cells, verdict)", "",
                          verdict_table(chosen, methods, baselines), "",
                          family_summary(chosen, methods, baselines), ""]
    claim = [r for r in rows if r.get("kind") == "claim-size"]
    if claim:
        parts += [f"#### The claim's size: {records.ACCURACY.heading} gain over each pair's best "
                  "label-free baseline (chosen on validation), one-sided tests of 2 points, Holm over "
                  "the pairs of each method", "", claim_size.table(claim), "", claim_size.sentence(claim), ""]
    return parts


def markdown(report: dict) -> str:
    runs = report["runs"]
    parts = [f"Device: {report['device']}; {len(runs)} runs in {report['wall_s'] / 60:.1f} min "
             f"({report.get('workers', 1)} worker processes).", "",
             settings_note(report), " ".join(filter(None, [cost_of_finetuning(runs), cost_note(runs)])),
             "", "Verdict rule (" + VERDICT_RULE + ")", ""]
    parts += _study_section(report, "main", "Main table: the paper's setting (teacher ssl)")
    parts += [supervised_check(runs), ""]
    parts += _study_section(report, "ablation", "Ablation: the fine-tuned teacher (ft)")
    return "\n".join(parts)


VERDICT_RULE = ("paired by seed; `beats` / `loses to` when the Holm-adjusted p of a paired t test is "
                "below 0.05 within its table, else `ties`; the interval shown is the plain 95 % paired "
                "t interval, which can exclude 0 in a cell that ties after Holm's correction; "
                "paper.json also keeps the interval at level 1 − 0.05·p/p_holm (ci_low, ci_high, "
                "ci_level), which excludes 0 exactly when the word is not `ties`")


# --- figures ---------------------------------------------------------------------------------------

def few_label_panels(runs: list[dict], kind: str) -> list[figures.Panel]:
    """Accuracy against target labels per class (0: no labels), per pair, on the main table."""
    panels = []
    for pair in pairs_of(runs, "main"):
        panel = figures.Panel(pair, "target labels per class (0: none)", "test accuracy")
        for (method,), chosen in group(study_runs(runs, "main", pair), "method").items():
            values = [[metric.read(r["metrics"]) for r in chosen] for metric in FEW_LABEL_CURVES[kind]]
            intervals = [stats.mean_interval(v) for v in values]
            panel.series.append(figures.Series(method, [0, 1, 5, 10], [m for m, _ in intervals],
                                               [0.0 if h != h else h for _, h in intervals]))
        panels.append(panel)
    return panels


def write_outputs(report: dict, out: Path) -> list[Path]:
    out = Path(out)
    atomic_write_json(out / "paper.json", report)
    atomic_write_bytes(out / "paper.md", markdown(report).encode())
    written = [out / "paper.json", out / "paper.md"]
    for kind, name in (("probe", "paper-few-label"), ("fine-tuned", "paper-few-label-ft")):
        written += figures.save(few_label_panels(report["runs"], kind),
                                f"Accuracy with k target labels per class ({kind}; test)",
                                out / "figures" / name, columns=3)
    return written


def run(out: str = "results", quick: bool = False, seeds: int | None = None, workers: int = 1,
        resume: bool = False, report_only: bool = False, command: str = "",
        device: str = "auto") -> dict:
    budget, why = (1.0, "x1 (--quick)") if quick else tuning.chosen_budget(out)
    plan = dataclasses.replace(with_seeds(QUICK if quick else FULL, seeds), budget=budget)
    if quick:
        chosen, finetune = QUICK_CHOSEN, QUICK_FINETUNE
    elif report_only:  # the results file holds the settings the runs used
        chosen, finetune = {}, QUICK_FINETUNE
    else:
        chosen, finetune = tuning.chosen_settings(out)
    report = bench_runs.load_or_execute(
        "paper", plan, lambda p: planned_runs(p, chosen, finetune), out, quick=quick, workers=workers,
        resume=resume, report_only=report_only, command=command, device=device,
        settings={**dataclasses.asdict(plan), "chosen": chosen, "finetune": finetune,
                  "supervised_budget": SUPERVISED_BUDGET, "defaults": DistillConfig().to_dict(),
                  "budget": {"multiplier": budget, "why": why}})
    if not report_only:
        report = bench_runs.planned_only(report, planned_runs(plan, chosen, finetune))
    report["verdicts"] = [*verdicts(report["runs"]),
                          *claim_size.claim_verdicts(report["runs"], BASELINES, claim_size.load_tuning(out))]
    report["written"] = [str(p) for p in write_outputs(report, out)]
    return report


def format_report(report: dict) -> str:
    return markdown(report) + "\nwrote " + ", ".join(report["written"])
