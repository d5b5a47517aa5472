"""`cmcd bench theory`: does the paper's bound hold, and does the target error grow with the TV
distance between the teacher's (source) and the student's (target) latent distributions?

The paper (arXiv 2405.03355) bounds the student's error on the target modality by the teacher's
error on the source plus the TV distance between the two latent distributions (plus a term for
how differently the two modalities are labelled, zero here: both sides of a pair share a label).
Checked student by student, with both errors those of the teacher's head:
err_target <= err_source + TV.

Students, with the `ssl` teacher (the paper's setting), each on several seeds: at the pair's
default gap, different methods, training lengths and pair budgets (`FIXED_GAP_ARMS`: these move
TV without moving the gap), and CMC over a sweep of gaps from 0 to 1 (`GAP_ARMS`: five levels,
the gap sweep). TV is the calibrated
estimate of cmcd.eval.divergence on the embeddings' top 2 principal directions (and on 16, nearly
the whole embedding); its calibration on samples of known TV, with spread-signal rows that show
what the projections lose, is part of the report. Every TV here is a lower bound on the latent
TV, so the bound check can confirm the inequality for a student but never refute it. Runs train
for a default run's steps times the budget `cmcd bench budget` chose (1 without
results/budget.json), each method with the settings `cmcd bench tuning` chose for it on validation
(results/tuning.json; the defaults without a full sweep), as in the paper's main table.
Writes results/theory.json, results/theory.md and results/figures/theory{,-calibration}.*.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from cmcd.bench import paper as bench_paper
from cmcd.bench import runner as bench_runs
from cmcd.bench import tuning
from cmcd.bench.theory_summary import summary
from cmcd.data.cache import atomic_write_bytes, atomic_write_json
from cmcd.eval import tv_calibration
from cmcd.eval.divergence import TV_DIMS, WIDE_TV_DIMS, two_sample_tv
from cmcd.modalities import pairs
from cmcd.train.config import DistillConfig
from cmcd.viz import figures
from cmcd.viz import theory as theory_figures
from cmcd.viz.theory import BOUND_KINDS, SUBSET_TITLES, TV_KINDS, interval, verdict_lines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arm:
    """One kind of student: a method, trained for a share of a default run's steps, on a pair
    budget, at a gap (None: the pair's default)."""

    name: str
    method: str
    steps_share: float = 1.0
    n_pairs: int | None = None
    gap: float | None = None


FIXED_GAP_ARMS = (Arm("cmc", "cmc"), Arm("cmd", "cmd"), Arm("l2", "l2"),
                  Arm("cmc, 1/4 steps", "cmc", steps_share=0.25),
                  Arm("l2, 1/4 steps", "l2", steps_share=0.25),
                  Arm("cmc, 500 pairs", "cmc", n_pairs=500))
GAP_SWEEP = (0.0, 0.25, 0.5, 0.75, 1.0)
GAP_ARMS = tuple(Arm(f"cmc, gap {gap:g}", "cmc", gap=gap) for gap in GAP_SWEEP)
# the students that differ only in their gap: the sweep, and CMC at the pair's default gap
GAP_SWEEP_STUDENTS = frozenset({FIXED_GAP_ARMS[0].name, *(arm.name for arm in GAP_ARMS)})


@dataclass(frozen=True)
class Plan:
    pairs: tuple[str, ...]
    arms: tuple[Arm, ...]
    seeds: tuple[int, ...]
    teacher: str = "ssl"
    steps: int | None = None  # None: a default run's steps
    budget: float = 1.0  # x those steps: the budget `cmcd bench budget` chose


FULL = Plan(pairs=bench_paper.BENCHMARK_PAIRS, arms=FIXED_GAP_ARMS + GAP_ARMS, seeds=(0, 1, 2))
# CI: the whole pipeline and the file formats on tiny runs; its numbers mean nothing.
QUICK = Plan(pairs=("digits-depth",), arms=(FIXED_GAP_ARMS[0], FIXED_GAP_ARMS[2], GAP_ARMS[-1]),
             seeds=(0,), steps=3)


def _is_default_student(arm: Arm, arms: tuple[Arm, ...], default_gap: float) -> bool:
    """Whether `arm` sits at the pair's default gap while an arm of the same student without a
    named gap exists: the same student, which must not count twice in the correlations."""
    return arm.gap == default_gap and any(
        other.gap is None and (other.method, other.steps_share, other.n_pairs)
        == (arm.method, arm.steps_share, arm.n_pairs) for other in arms)


def planned_runs(plan: Plan, chosen: dict | None = None) -> list[tuple[str, DistillConfig]]:
    """(arm name, config) for every pair x arm x seed; `chosen`: settings per method (tuning).
    A gap arm at the pair's default gap (gap 0 on digits-audio-recorded) is left out there."""
    runs = []
    for pair in plan.pairs:
        steps = (plan.steps or bench_runs.default_steps(pair)) * plan.budget
        default_gap = pairs.get_spec(pair).default_gap
        for arm in plan.arms:
            if _is_default_student(arm, plan.arms, default_gap):
                continue
            for seed in plan.seeds:
                runs.append((arm.name, DistillConfig.from_flat(
                    pair=pair, method=arm.method, teacher=plan.teacher, gap=arm.gap,
                    n_pairs=arm.n_pairs, steps=max(1, round(steps * arm.steps_share)), seed=seed,
                    **(chosen or {}).get(arm.method, {}))))
    return runs


@functools.cache
def _test_size(pair: str) -> int:
    return pairs.split_sizes(pair)["test"]


def _interval(metrics: dict, name: str, prefix: str) -> dict:
    tv = metrics["tv_intervals"][name]
    return {prefix: tv["estimate"], f"{prefix}_low": tv["ci_low"], f"{prefix}_high": tv["ci_high"]}


def point(run: dict) -> dict:
    """One student: what it is, its target and source errors, and its TV estimates."""
    config, metrics = run["config"], run["metrics"]
    return {"pair": config["pair"], "arm": run["study"], "method": config["method"],
            "fixed_gap": config["gap"] is None, "gap_sweep": run["study"] in GAP_SWEEP_STUDENTS,
            "gap": metrics["gap"], "steps": metrics["steps"],
            "n_pairs": metrics["n_pairs"], "seed": config["seed"], "n_test": _test_size(config["pair"]),
            "error": round(1 - metrics["zero_label_acc"]["head"], 4),
            "source_error": round(1 - metrics["source_acc"]["head"], 4),
            **_interval(metrics, f"embedding_{TV_DIMS}d", "tv"),
            **_interval(metrics, f"embedding_{WIDE_TV_DIMS}d", "tv_wide"),
            "tv_head": metrics["tv_distance_head"]}


def calibration() -> list[dict]:
    """The TV estimator, on TV_DIMS and on WIDE_TV_DIMS directions, on samples of known TV
    (a few seconds, so the quick plan runs all of it too)."""
    rows = []
    for name, dims in (("tv", TV_DIMS), ("tv_wide", WIDE_TV_DIMS)):
        rows += tv_calibration.calibrate(functools.partial(two_sample_tv, dims=dims), name)
    return rows


def _calibration_table(summary: dict) -> list[str]:
    lines = ["| TV estimator | levels | largest error | mean error | 95 % intervals holding the true TV |",
             "| --- | --- | --- | --- | --- |"]
    for name, c in summary["calibration"].items():
        lines.append(f"| {TV_KINDS[name]} | {c['levels']} | {c['max_error']:.3f} | "
                     f"{c['mean_abs_error']:.3f} | {c['coverage']:.0%} |")
    return lines


def _spread_table(summary: dict) -> list[str]:
    spread = summary.get("spread", {})
    levels = sorted({tv for entry in spread.values() for tv in map(float, entry["loss_by_true_tv"])})
    if not levels:
        return []
    lines = ["Spread-signal rows (true TV − estimate; the difference spread over all 128 coordinates):",
             "", "| TV estimator | " + " | ".join(f"true TV {tv:g}" for tv in levels) + " |",
             "|" + " --- |" * (1 + len(levels))]
    for name, entry in spread.items():
        losses = {float(tv): loss for tv, loss in entry["loss_by_true_tv"].items()}
        lines.append(f"| {TV_KINDS[name]} | " + " | ".join(f"{losses[tv]:.3f}" for tv in levels) + " |")
    return lines + [""]


def _correlation_table(correlation: dict) -> list[str]:
    """A row per pair and a pooled row; a column per (TV kind, correlation)."""
    kinds = [(kind, "spearman") for kind in TV_KINDS] + [("tv", "pearson")]
    lines = ["| pair | students | " + " | ".join(
                 f"{'ρ' if name == 'spearman' else 'Pearson r'}, {TV_KINDS[kind]}" for kind, name in kinds)
             + " |", "|" + " --- |" * (2 + len(kinds))]

    def row(label: str, entry_of) -> str:
        return (f"| {label} | {entry_of('tv')['spearman']['n']} | "
                + " | ".join(interval(entry_of(kind)[name]) for kind, name in kinds) + " |")
    for pair in correlation["tv"]["by_pair"]:
        lines.append(row(pair, lambda kind, pair=pair: correlation[kind]["by_pair"][pair]))
    lines.append(row("pooled, pair as stratum", lambda kind: correlation[kind]["pooled"]))
    return lines


def _bound_table(bound: dict) -> list[str]:
    lines = ["| pair | " + " | ".join(f"{TV_KINDS[kind]}: holds / undecided / fails"
                                      for kind in BOUND_KINDS) + " |",
             "|" + " --- |" * (1 + len(BOUND_KINDS))]
    for pair in [*bound["tv"]["by_pair"], "all"]:
        cells = [bound[kind]["by_pair"][pair] if pair != "all" else bound[kind] for kind in BOUND_KINDS]
        lines.append(f"| {pair} | " + " | ".join(
            f"{c['holds']} / {c['undecided']} / {c['fails']}" for c in cells) + " |")
    return lines


def tables(report: dict) -> str:
    """The calibration, correlation and bound tables."""
    summary = report["summary"]
    lines = _calibration_table(summary) + [""] + _spread_table(summary)
    for subset, title in SUBSET_TITLES.items():
        lines += [f"Target error against TV, {title}: correlation [95 % bootstrap interval, "
                  "resampling arms and seeds]", "",
                  *_correlation_table(summary["correlation"][subset]), ""]
    lines += ["The bound err_target ≤ err_source + TV, student by student (errors of the teacher's "
              "head, on the target and on the source):", "", *_bound_table(summary["bound"])]
    return "\n".join(lines)


def settings_note(settings: dict) -> str:
    """The budget and the methods' settings the students trained with (reports made before the
    theory study read tuning.json ran every method at its defaults)."""
    budget = settings.get("budget", {}).get("why", "x1, a default run's steps")
    chosen = settings.get("chosen", {})
    if not chosen:
        return f"Budget: {budget}. Settings: every method at its defaults."
    methods = ", ".join(f"{m} ({', '.join(f'{k} {v}' for k, v in chosen.get(m, {}).items()) or 'defaults'})"
                        for m in dict.fromkeys(arm["method"] for arm in settings["arms"]))
    return (f"Budget: {budget}. Settings: {settings.get('chosen_why', 'defaults')}: {methods}.")


def markdown(report: dict) -> str:
    seeds = len({p["seed"] for p in report["points"]})
    head = (f"Device: {report['device']}; {len(report['runs'])} runs in {report['wall_s'] / 60:.1f} "
            f"min; teacher `{report['settings']['teacher']}`, {seeds} seed"
            f"{'s' if seeds != 1 else ''} per student. {settings_note(report['settings'])}")
    verdicts = "\n".join(f"- {line}" for line in verdict_lines(report))
    return f"{head}\n\n{tables(report)}\n\n{verdicts}\n"


def write_outputs(report: dict, out: Path) -> list[Path]:
    out = Path(out)
    atomic_write_bytes(out / "theory.md", markdown(report).encode())
    figure_folder = out / "figures"
    return [out / "theory.json", out / "theory.md",
            *figures.save(theory_figures.panels(report), theory_figures.TITLE,
                          figure_folder / "theory", columns=3),
            *figures.save(theory_figures.calibration_panels(report),
                          theory_figures.CALIBRATION_TITLE, figure_folder / "theory-calibration")]


def tuned_settings(out: str | Path) -> tuple[dict, str]:
    """(settings per method, where they come from): the full sweep's choice in out/tuning.json, or
    every method's defaults without one (the theory study does not need the sweep to run)."""
    try:
        chosen, _ = tuning.chosen_settings(out)
    except (FileNotFoundError, ValueError) as missing:
        log.warning(f"theory runs every method at its defaults: {missing}")
        return {}, "defaults (no results/tuning.json from a full sweep)"
    return chosen, "chosen on validation by `cmcd bench tuning` (tuning.json)"


def run(out: str = "results", quick: bool = False, seeds: int | None = None, workers: int = 1,
        resume: bool = False, report_only: bool = False, command: str = "",
        device: str = "auto") -> dict:
    budget, why = (1.0, "x1 (--quick)") if quick else tuning.chosen_budget(out)
    plan = dataclasses.replace(bench_runs.choose_plan(FULL, QUICK, quick, seeds), budget=budget)
    if quick or report_only:  # report_only: the results file holds the settings the runs used
        chosen, chosen_why = {}, "defaults (--quick)" if quick else "those theory.json records"
    else:
        chosen, chosen_why = tuned_settings(out)
    log.info(f"theory budget: {why}; settings: {chosen_why}")
    planned, product = len(planned_runs(plan)), len(plan.pairs) * len(plan.arms) * len(plan.seeds)
    repeats = f", less {product - planned} that would repeat a default student" if planned < product else ""
    log.info(f"theory plan: {planned} runs ({len(plan.pairs)} pairs x {len(plan.arms)} arms x "
             f"{len(plan.seeds)} seeds{repeats})")
    report = bench_runs.load_or_execute(
        "theory", plan, lambda p: planned_runs(p, chosen), out, quick=quick, workers=workers,
        resume=resume, report_only=report_only, command=command, device=device,
        settings={**dataclasses.asdict(plan), "budget": {"multiplier": budget, "why": why},
                  "chosen": chosen, "chosen_why": chosen_why})
    if not report_only:
        report = bench_runs.planned_only(report, planned_runs(plan, chosen))
    report["calibration"] = calibration()
    current = [r for r in report["runs"] if "tv_intervals" in r["metrics"]]
    if len(current) < len(report["runs"]):
        log.warning(f"{len(report['runs']) - len(current)} runs in {out} predate the calibrated TV "
                    "estimate and are left out of the points")
    report["points"] = [point(r) for r in current]
    report["summary"] = summary(report["points"], report["calibration"])
    atomic_write_json(Path(out) / "theory.json", report)
    report["written"] = [str(p) for p in write_outputs(report, out)]
    return report


def format_report(report: dict) -> str:
    return markdown(report) + "\nwrote " + ", ".join(report["written"])
