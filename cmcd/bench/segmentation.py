"""`cmcd bench segmentation`: dense CMCD (CMC, CMD) against dense L2 on the depth pairs.

Every pair with item masks (digits-depth, fashion-depth) x cmc, cmd, l2 (the dense losses) x
seeds, scored on the test split: zero-label foreground mIoU (the ten classes, background
excluded: its IoU near 0.9 otherwise dominates the mean), mIoU and pixel accuracy, and few-label
mIoU with 1, 5 and 10 labelled maps per class. The main setting is the paper's: the `ssl` teacher
(self-supervised, then a linear head on the source labels) x 5 seeds; the `ft` teacher (fine-tuned
with source labels) is an ablation x 3 seeds. Each CMCD method is compared with L2 seed by seed,
with the recognition benchmark's rule (cmcd.eval.stats): paired t tests, Holm-corrected across
each teacher's cells. Writes results/segmentation.json and results/segmentation.md.

Each method runs with the settings `cmcd bench segmentation-tuning` chose for it on the validation
split (the same sweep for every dense loss), read from segmentation-tuning.json in --out; the ft
ablation uses the same choice. Without that file, and under --quick, every method runs with the
SegmentConfig defaults. segmentation.json records which under "settings": "tuning" (where the
settings come from and what was chosen) and "methods" (the settings each method ran with).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cmcd.bench import runner as bench_runs
from cmcd.bench import segmentation_tuning
from cmcd.eval import stats
from cmcd.eval.records import Metric
from cmcd.eval.results import group, mean_std
from cmcd.modalities import masks
from cmcd.train.config import SEGMENTATION_METHODS, SegmentConfig
from cmcd.train.segment import segment_distill

NAME = "segmentation"
METHODS = tuple(SEGMENTATION_METHODS)  # cmc, cmd, l2: the dense losses of the registry
CMCD = ("cmc", "cmd")
BASELINE = "l2"

FOREGROUND_MIOU = Metric("miou_foreground_zero_label", "zero-label foreground mIoU",
                         "zero-label mIoU of the ten classes, background excluded")
ZERO_LABEL_MIOU = Metric("miou_zero_label", "zero-label mIoU", "zero-label mIoU")
PIXEL_ACC = Metric("pixel_acc", "zero-label pixel accuracy", "zero-label pixel accuracy")
FEW_LABEL_MIOU = {k: Metric(f"miou_few_label.{k}", f"mIoU, {k} map{'s' if k > 1 else ''}/class",
                            f"few-label mIoU, {k} per class") for k in (1, 5, 10)}
TABLE = (FOREGROUND_MIOU, ZERO_LABEL_MIOU, PIXEL_ACC, *FEW_LABEL_MIOU.values())
VERDICT_METRICS = (FOREGROUND_MIOU, ZERO_LABEL_MIOU, FEW_LABEL_MIOU[10])
STUDIES = {"main": "ssl", "ablation": "ft"}  # study -> its teacher


@dataclass(frozen=True)
class Plan:
    pairs: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]  # the main setting's (teacher ssl)
    overrides: tuple[tuple[str, object], ...] = ()  # SegmentConfig settings besides the defaults
    ablation_seeds: tuple[int, ...] = ()  # the ft teacher's


FULL = Plan(pairs=masks.SEGMENTATION_PAIRS, methods=METHODS, seeds=tuple(range(5)),
            ablation_seeds=(0, 1, 2))
# CI: the pipeline and the file format on tiny runs; its numbers mean nothing.
QUICK = Plan(pairs=("digits-depth",), methods=("cmc", "l2"), seeds=(0,),
             overrides=(("steps", 2), ("n_pairs", 32), ("head_steps", 2), ("fine_tune_steps", 1),
                        ("few_label_draws", 1)))


def method_config(plan: Plan, pair: str, method: str, seed: int, teacher: str,
                  chosen: dict[str, dict] | None = None) -> SegmentConfig:
    """A run's config: the defaults, then the settings chosen for `method` on validation
    (`chosen`, from results/segmentation-tuning.json), then the plan's overrides (--quick)."""
    settings = {**(chosen or {}).get(method, {}), **dict(plan.overrides)}
    return SegmentConfig.from_flat(pair=pair, method=method, seed=seed, teacher=teacher, **settings)


def planned_runs(plan: Plan, chosen: dict[str, dict] | None = None) -> list[tuple[str, SegmentConfig]]:
    seeds = {"main": plan.seeds, "ablation": plan.ablation_seeds}
    return [(study, method_config(plan, pair, method, seed, teacher, chosen))
            for study, teacher in STUDIES.items() for pair in plan.pairs for method in plan.methods
            for seed in seeds[study]]


def _segment_metrics(study: str, config: dict) -> dict:
    return segment_distill(SegmentConfig.from_dict(config)).metrics


SEGMENTATION = bench_runs.RunKind(_segment_metrics, bench_runs.prepare_segmentation,
                                  lambda metrics: f"zero-label mIoU {metrics['miou_zero_label']:.3f}")


# --- statistics -----------------------------------------------------------------------------------

def _by_seed(runs: list[dict], metric: Metric) -> dict[int, float]:
    return {run["config"]["seed"]: metric.read(run["metrics"]) for run in runs}


def _measured(runs: list[dict], metric: Metric) -> bool:
    """Whether every run has `metric` (runs from before foreground mIoU do not)."""
    try:
        return all(metric.read(run["metrics"]) is not None for run in runs)
    except KeyError:
        return False


def verdicts(runs: list[dict]) -> list[dict]:
    """Each CMCD method against L2, per pair, on foreground, zero-label and 10-label mIoU: one
    family per teacher, Holm-corrected across all its cells."""
    rows = []
    for (teacher,), of_teacher in group(runs, "teacher").items():
        cells = []
        for (pair,), cell in group(of_teacher, "pair").items():
            by_method = group(cell, "method")
            for method in CMCD:
                for metric in [m for m in VERDICT_METRICS if _measured(cell, m)]:
                    if (method,) in by_method and (BASELINE,) in by_method:
                        differences = stats.paired_differences(_by_seed(by_method[(method,)], metric),
                                                               _by_seed(by_method[(BASELINE,)], metric))
                        labels = {"pair": pair, "teacher": teacher, "method": method, "baseline": BASELINE,
                                  "metric": metric.name}
                        cells.append((labels, differences))
        rows += stats.family_verdicts(cells)
    return rows


def main_teacher(runs: list[dict]) -> str:
    """The main setting's teacher (ssl) when its runs are there, else the teacher the runs used."""
    teachers = {run["config"].get("teacher", "ft") for run in runs}
    return STUDIES["main"] if STUDIES["main"] in teachers or not teachers else teachers.pop()


def teacher_scores(runs: list[dict]) -> dict[str, dict[str, float]]:
    """The dense teacher's own test scores on photos, per pair (the same in every run of a pair),
    for the main setting's teacher."""
    teacher = main_teacher(runs)
    return {pair: {"miou": cell[0]["metrics"]["teacher_miou"],
                   "pixel_acc": cell[0]["metrics"]["teacher_pixel_acc"]}
            for (pair,), cell in group([r for r in runs if r["config"].get("teacher", "ft") == teacher],
                                       "pair").items()}


# --- report ---------------------------------------------------------------------------------------

def _cell(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:.3f} ± {std:.3f}"


def pair_table(runs: list[dict], pair: str, teacher: dict) -> str:
    chosen = [r for r in runs if r["config"]["pair"] == pair]
    by_method, columns = group(chosen, "method"), [m for m in TABLE if _measured(chosen, m)]
    lines = ["| method | " + " | ".join(m.heading for m in columns) + " |",
             "| --- |" + " --- |" * len(columns)]
    for method in [m for m in METHODS if (m,) in by_method]:
        cells = [_cell([m.read(r["metrics"]) for r in by_method[(method,)]]) for m in columns]
        lines.append(f"| {method} (dense-{method}) | " + " | ".join(cells) + " |")
    own = {ZERO_LABEL_MIOU: f"{teacher['miou']:.3f}", PIXEL_ACC: f"{teacher['pixel_acc']:.3f}"}
    lines.append("| teacher on the test photos | " + " | ".join(own.get(m, "–") for m in columns) + " |")
    return "\n".join(lines)


def _interval(row: dict, low: str, high: str) -> str:
    return "unbounded" if row.get(low) is None else f"[{row[low]:+.3f}, {row[high]:+.3f}]"


def verdict_table(rows: list[dict]) -> str:
    """A row per cell: the difference, its plain 95 % t interval, the interval at the level that
    matches the Holm-corrected verdict (1 − 0.05·p/p_holm), p (Holm) and the verdict."""
    lines = [f"| pair | teacher | method − {BASELINE} | metric | difference | 95 % interval | "
             "Holm-matched interval | p (Holm) | seeds | verdict |", "|" + " --- |" * 10]
    for row in rows:
        plain, matched = _interval(row, "ci95_low", "ci95_high"), _interval(row, "ci_low", "ci_high")
        lines.append(f"| {row['pair']} | {row.get('teacher', 'ft')} | {row['method']} − {row['baseline']} | "
                     f"{row['metric']} | {row['diff_mean']:+.3f} | {plain} | {matched} | "
                     f"{row['p_holm']:.3f} | {row['n']} | {row['verdict']} |")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    runs = report["runs"]
    seeds = len({r["config"]["seed"] for r in runs})
    parts = [f"Device: {report['device']}; {len(runs)} runs in {report['wall_s'] / 60:.1f} min "
             f"({report.get('workers', 1)} worker processes); mean ± standard deviation over "
             f"{seeds} seed(s); test split; 11 labels (background and 10 classes); "
             f"{settings_note(report)}.", ""]
    for (teacher,), of_teacher in group(runs, "teacher").items():
        setting = "main setting" if teacher == STUDIES["main"] else "ablation"
        scores = teacher_scores(of_teacher)
        for pair, own in scores.items():
            parts += [f"#### {pair}, teacher {teacher} ({setting})", "",
                      pair_table(of_teacher, pair, own), ""]
    parts += ["#### Dense CMCD against dense L2, paired by seed (paired t tests, Holm-corrected "
              "across each teacher's cells; a win or a loss only where the Holm-matched interval "
              "excludes 0)", "", verdict_table(report["verdicts"]), ""]
    return "\n".join(parts)


def chosen_settings(out: str, quick: bool) -> tuple[dict[str, dict], str]:
    """(settings per method, where they come from): --quick and a missing tuning file give the
    defaults; otherwise what `cmcd bench segmentation-tuning` chose in out/segmentation-tuning.json."""
    if quick:
        return {}, "the SegmentConfig defaults (--quick)"
    return segmentation_tuning.chosen_settings(out)


def method_settings(plan: Plan, chosen: dict[str, dict]) -> dict[str, dict]:
    """The settings each method runs with (those every run of it shares)."""
    own = ("pair", "method", "seed", "teacher", "device")
    return {method: {k: v for k, v in method_config(plan, plan.pairs[0], method, 0, STUDIES["main"],
                                                    chosen).to_dict().items() if k not in own}
            for method in plan.methods}


def _words(settings: dict) -> str:
    loss = "".join(f", {name} {value:g}" if isinstance(value, float) else f", {name} {value}"
                   for name, value in settings["loss"].items())
    return (f"lr {settings['lr']:g}, {settings['steps']} steps{loss}, fine-tuning "
            f"{settings['fine_tune_steps']} steps at lr {settings['fine_tune_lr']:g}")


def settings_note(report: dict) -> str:
    """Which settings the runs used, for the report and the README."""
    settings = report.get("settings", {})
    if "tuning" not in settings:  # a report from before the per-method sweep
        return ("every run with the `SegmentConfig` defaults of its day (chosen on validation for "
                "dense CMC alone)")
    methods = "; ".join(f"{method} {_words(values)}" for method, values in settings["methods"].items())
    return f"settings, {settings['tuning']['source']}: {methods}"


def run(out: str = "results", quick: bool = False, seeds: int | None = None, workers: int = 1,
        resume: bool = False, report_only: bool = False, command: str = "",
        device: str = "auto") -> dict:
    plan = bench_runs.choose_plan(FULL, QUICK, quick, seeds)
    chosen, source = ({}, "") if report_only else chosen_settings(out, quick)
    report = bench_runs.load_or_execute(
        NAME, plan, lambda p: planned_runs(p, chosen), out, quick=quick, workers=workers,
        resume=resume, report_only=report_only, command=command, device=device, kind=SEGMENTATION,
        settings={**dataclasses.asdict(plan), "defaults": SegmentConfig().to_dict(),
                  "tuning": {"source": source, "chosen": chosen},
                  "methods": method_settings(plan, chosen)})
    if not report_only:  # a resumed file may hold runs under other settings
        report = bench_runs.planned_only(report, planned_runs(plan, chosen))
    report["teacher"] = teacher_scores(report["runs"])
    report["verdicts"] = verdicts(report["runs"])
    return bench_runs.write_json_and_markdown(report, out, NAME, markdown(report))


def format_report(report: dict) -> str:
    return markdown(report) + "\nwrote " + ", ".join(report["written"])
