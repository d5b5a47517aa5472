"""`cmcd bench segmentation-tuning`: every dense loss gets the same validation sweep.

Every segmentation method of the loss registry (cmc, cmd, l2: dense-cmc, dense-cmd, dense-l2)
trains the same number of configurations, CANDIDATE_COUNT:

- the same six of the shared knobs, one at a time around the centre CENTRE (lr 0.02, 300 steps):
  the centre itself, lr 0.003, 0.006 and 0.012, 200 and 400 steps;
- three of its own loss options (cmc: temperature 0.1 and 0.5, 16 locations; cmd: its two
  temperatures at 0.05/0.2 and 0.1/0.5, 16 locations); a loss without options (l2) gets three
  more of the shared knobs instead (both changed at once, from the same grid: EXTRA_SHARED).

Each configuration trains one student per depth pair (masks.SEGMENTATION_PAIRS) with the main
setting's `ssl` teacher and the paper tuning's seed of its own (1000), and is scored by its
zero-label foreground mIoU (the ten classes, background excluded: the segmentation benchmark's
headline) on the *validation* split;
the test split is never read. A method's configurations are compared by their mean over the
pairs, and the best wins (ties: the earlier one): one choice per method, used on both pairs.

Then the few-label fine-tuning schedule (fine_tune_lr x fine_tune_steps, SCHEDULES), per method:
its chosen student is trained again on each pair and fine-tuned under every schedule on 1, 5 and
10 labelled maps per class, scored by foreground mIoU on validation (mean over k and pairs).

Writes results/segmentation-tuning.json: every run ("runs", kept by --resume), every candidate on
every pair with its validation foreground mIoU, mIoU and training seconds ("candidates"), each
configuration's mean ("ranking"), the schedules ("fine_tuning") and the settings chosen per method
("chosen": flat `SegmentConfig` settings), which `cmcd bench segmentation` reads through
`chosen_settings`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from cmcd import paths
from cmcd.bench import runner as bench_runs
from cmcd.bench import tuning
from cmcd.data.cache import atomic_write_json
from cmcd.modalities import masks
from cmcd.train.config import SEGMENTATION_METHODS, SegmentConfig
from cmcd.train.segment import few_label_scores, train_segmenter, validation_scores

log = logging.getLogger(__name__)

NAME = "segmentation-tuning"
TEACHER = "ssl"  # the main setting's
SEED = tuning.TUNING_SEED  # a seed of its own: the benchmark's seeds count from 0
SCORE = "miou_foreground"  # of the validation split

CENTRE = {"lr": 0.02, "steps": 300}
SHARED = ({"lr": 0.003}, {"lr": 0.006}, {"lr": 0.012}, {"steps": 200}, {"steps": 400})
OWN = {
    "cmc": ({"temperature": 0.1}, {"temperature": 0.5}, {"locations": 16}),
    "cmd": ({"teacher_temperature": 0.05, "student_temperature": 0.2},
            {"teacher_temperature": 0.1, "student_temperature": 0.5}, {"locations": 16}),
}
# For a loss without options: as many configurations again, of the shared knobs' grid.
EXTRA_SHARED = ({"lr": 0.012, "steps": 400}, {"lr": 0.006, "steps": 400}, {"lr": 0.012, "steps": 200})
CANDIDATE_COUNT = 1 + len(EXTRA_SHARED) + len(SHARED)
SCHEDULES = tuple((lr, steps) for lr in (3e-4, 1e-3, 3e-3) for steps in (10, 20))  # fine-tuning


@dataclass(frozen=True)
class Plan:
    pairs: tuple[str, ...]
    methods: tuple[str, ...]
    candidates: int  # configurations per method: the first of each list
    schedules: tuple[tuple[float, int], ...]  # (fine_tune_lr, fine_tune_steps) to choose from
    overrides: tuple[tuple[str, object], ...] = ()  # settings over every configuration's (--quick)


FULL = Plan(pairs=masks.SEGMENTATION_PAIRS, methods=tuple(SEGMENTATION_METHODS),
            candidates=CANDIDATE_COUNT, schedules=SCHEDULES)
# CI: the pipeline and the file format on tiny runs; its choices mean nothing.
QUICK = Plan(pairs=("digits-depth",), methods=("cmc", "l2"), candidates=2,
             schedules=((1e-3, 1), (3e-3, 1)),
             overrides=(("steps", 2), ("n_pairs", 32), ("head_steps", 2), ("few_label_draws", 1)))


def own_candidates(method: str) -> tuple[dict, ...]:
    """A method's configurations of its own loss options; EXTRA_SHARED for a loss without any."""
    if method in OWN:
        return OWN[method]
    if not SegmentConfig.options_for(method).names():
        return EXTRA_SHARED
    raise KeyError(f"{SEGMENTATION_METHODS[method]} has loss options but no configurations of them "
                   f"in {__name__}.OWN: give it {len(EXTRA_SHARED)}, as the others have")


def candidates(method: str, count: int = CANDIDATE_COUNT) -> tuple[dict, ...]:
    """A method's first `count` configurations, each in full for the shared knobs: the centre,
    its own ones, then the shared ones."""
    changes = ({}, *own_candidates(method), *SHARED)
    return tuple({**CENTRE, **change} for change in changes)[:count]


def config_of(plan: Plan, pair: str, method: str, settings: dict) -> SegmentConfig:
    return SegmentConfig.from_flat(pair=pair, method=method, teacher=TEACHER, seed=SEED,
                                   **{**settings, **dict(plan.overrides)})


def planned_runs(plan: Plan, report: dict | None = None) -> list[tuple[str, SegmentConfig]]:
    """The sweep's runs; given the sweep's `report`, also the fine-tuning study's: each method's
    chosen configuration trained again on every pair."""
    runs = [("sweep", config_of(plan, pair, method, settings))
            for method in plan.methods for settings in candidates(method, plan.candidates)
            for pair in plan.pairs]
    if report is not None:
        chosen = {method: choose(ranking(report, plan, method)) for method in plan.methods}
        runs += [("finetune", config_of(plan, pair, method, settings))
                 for method, settings in chosen.items() if settings for pair in plan.pairs]
    return runs


def schedule_key(lr: float, steps: int) -> str:
    return f"{steps}@{lr:g}"


def _schedule_scores(setup, schedules) -> dict[str, dict]:
    """Few-label scores on validation of the trained student under each fine-tuning schedule."""
    base, scores = setup.config, {}
    for lr, steps in schedules:
        setup.config = dataclasses.replace(base, fine_tune_lr=lr, fine_tune_steps=steps)
        few = few_label_scores(setup, setup.student, setup.teacher.head, "val")
        scores[schedule_key(lr, steps)] = {"miou": few["miou"], "miou_foreground": few["miou_foreground"]}
    setup.config = base
    return scores


def validation_job(study: str, config: dict, schedules: tuple = ()) -> dict:
    """A tuning run: train, then score on the validation split only (the fine-tuning study: under
    each schedule too)."""
    config = SegmentConfig.from_dict(config)
    started, cpu = time.perf_counter(), time.process_time()
    setup, _, train_s = train_segmenter(config)
    metrics = {"pair": config.pair, "method": config.method, "loss": config.loss_name,
               "teacher": config.teacher, "seed": config.seed, "device": str(setup.device),
               "train_s": round(train_s, 2), "validation": validation_scores(setup)}
    if study == "finetune":
        metrics["few_label_val"] = _schedule_scores(setup, schedules)
    return {**metrics, "train_cpu_s": round(time.process_time() - cpu, 2),
            "wall_s": round(time.perf_counter() - started, 2)}


def _result(metrics: dict) -> str:
    return f"validation foreground mIoU {metrics['validation'][SCORE]:.3f}"


def _key(config: dict) -> str:
    """A run's identity whatever device it ran on."""
    return json.dumps({**config, "device": None}, sort_keys=True)


def _runs_of(report: dict, plan: Plan, study: str, method: str, settings: dict) -> dict[str, dict]:
    """{pair: metrics} of this configuration's runs in the report."""
    wanted = {_key(config_of(plan, pair, method, settings).to_dict()): pair for pair in plan.pairs}
    return {wanted[_key(run["config"])]: run["metrics"] for run in report["runs"]
            if run["study"] == study and _key(run["config"]) in wanted}


def _mean(values: dict[str, float], plan: Plan) -> float | None:
    """The mean over the plan's pairs; None until every pair has its score."""
    return round(statistics.fmean(values.values()), 4) if set(values) == set(plan.pairs) else None


def ranking(report: dict, plan: Plan, method: str) -> list[dict]:
    """Each configuration of `method` with its validation foreground mIoU per pair and their mean."""
    rows = []
    for settings in candidates(method, plan.candidates):
        runs = _runs_of(report, plan, "sweep", method, settings)
        scores = {pair: metrics["validation"][SCORE] for pair, metrics in runs.items()}
        rows.append({"settings": settings, "val_miou_foreground": scores, "mean": _mean(scores, plan)})
    return rows


def choose(rows: list[dict]) -> dict:
    """The settings of the best mean; the earlier configuration wins a tie."""
    scored = [row for row in rows if row["mean"] is not None]
    return max(scored, key=lambda row: row["mean"])["settings"] if scored else {}


def candidate_rows(report: dict, plan: Plan) -> list[dict]:
    """A row per configuration and pair: its validation scores and training seconds."""
    return [{"method": method, "pair": pair, "settings": settings,
             "val_miou_foreground": metrics["validation"]["miou_foreground"],
             "val_miou": metrics["validation"]["miou"], "train_s": metrics["train_s"]}
            for method in plan.methods for settings in candidates(method, plan.candidates)
            for pair, metrics in _runs_of(report, plan, "sweep", method, settings).items()]


def schedule_rows(report: dict, plan: Plan, method: str, settings: dict) -> list[dict]:
    """Each fine-tuning schedule of `method`'s chosen student: validation foreground mIoU and
    mIoU per pair (means over k) and the mean over pairs."""
    runs = _runs_of(report, plan, "finetune", method, settings)
    rows = []
    for lr, steps in plan.schedules:
        scores = {pair: metrics["few_label_val"][schedule_key(lr, steps)] for pair, metrics in runs.items()}
        per_pair = {name: {pair: round(statistics.fmean(s[name].values()), 4) for pair, s in scores.items()}
                    for name in ("miou_foreground", "miou")}
        rows.append({"settings": {"fine_tune_lr": lr, "fine_tune_steps": steps},
                     "val_miou_foreground": per_pair["miou_foreground"], "val_miou": per_pair["miou"],
                     "mean": _mean(per_pair["miou_foreground"], plan)})
    return rows


def summarise(report: dict, plan: Plan) -> dict:
    rankings = {method: ranking(report, plan, method) for method in plan.methods}
    sweep = {method: choose(rows) for method, rows in rankings.items()}
    fine_tuning = {method: schedule_rows(report, plan, method, sweep[method]) for method in plan.methods}
    chosen = {method: {**sweep[method], **choose(fine_tuning[method])} for method in plan.methods}
    return {**report, "candidates": candidate_rows(report, plan), "ranking": rankings,
            "fine_tuning": fine_tuning, "chosen": chosen}


def plan_size(plan: Plan) -> str:
    sweep, again = len(plan.methods) * plan.candidates * len(plan.pairs), len(plan.methods) * len(plan.pairs)
    return (f"{sweep + again} training runs: {len(plan.methods)} methods x {plan.candidates} "
            f"configurations x {len(plan.pairs)} pairs, then each method's chosen student again on "
            f"each pair ({again}), fine-tuned under {len(plan.schedules)} schedules")


def run(out: str = "results", quick: bool = False, seeds: int | None = None, workers: int = 1,
        resume: bool = False, report_only: bool = False, command: str = "",
        device: str = "auto") -> dict:
    if seeds:
        raise ValueError(f"cmcd bench segmentation-tuning trains seed {SEED} only; --seeds does not apply")
    plan = QUICK if quick else FULL
    log.info(f"segmentation tuning plan: {plan_size(plan)}")
    common = {"quick": quick, "workers": workers, "report_only": report_only, "command": command,
              "device": device,
              "kind": bench_runs.RunKind(functools.partial(validation_job, schedules=plan.schedules),
                                         bench_runs.prepare_segmentation, _result),
              "settings": {**dataclasses.asdict(plan), "teacher": TEACHER, "seed": SEED,
                           "score": "zero-label foreground mIoU on the validation split, mean over pairs",
                           "centre": CENTRE, "defaults": SegmentConfig().to_dict()}}
    report = bench_runs.load_or_execute(NAME, plan, planned_runs, out, resume=resume, **common)
    if not report_only:  # then each method's chosen student, under every fine-tuning schedule
        report = bench_runs.load_or_execute(NAME, plan, lambda p: planned_runs(p, report), out,
                                            resume=True, **common)
    report = summarise(report, plan)
    path = Path(out) / f"{NAME}.json"
    atomic_write_json(path, report)
    return {**report, "written": [str(path)]}


def chosen_settings(out: str | Path) -> tuple[dict[str, dict], str]:
    """(flat SegmentConfig settings per method, where they come from), read from
    out/segmentation-tuning.json; no settings (the defaults) without a file of this sweep."""
    path = Path(out) / f"{NAME}.json"
    if not path.exists():
        return {}, f"the SegmentConfig defaults: no {path} (`cmcd bench {NAME}` writes it)"
    tuning = json.loads(path.read_text())
    if tuning.get("quick"):
        raise ValueError(f"{path} comes from `cmcd bench {NAME} --quick`; run it without --quick "
                         "first, or use --quick here too")
    if "chosen" not in tuning:
        return {}, f"the SegmentConfig defaults: {path} comes from the older dense-CMC-only sweep"
    why = f"chosen per method on validation by `cmcd bench {NAME}` ({path})"
    if tuning.get("data_version") != paths.DATA_VERSION:
        log.warning(f"{path} was tuned on data version {tuning.get('data_version')}, "
                    f"not {paths.DATA_VERSION}")
        why += f", on data version {tuning.get('data_version')}"
    return tuning["chosen"], why


def _is_chosen(settings: dict, chosen: dict, fine_tuning: bool) -> bool:
    part = {k: v for k, v in chosen.items() if k.startswith("fine_tune_") == fine_tuning}
    return settings == part


def format_report(report: dict) -> str:
    lines = []
    for method, rows in report["ranking"].items():
        schedules = report["fine_tuning"][method]
        for row, fine_tuning in [(r, False) for r in rows] + [(r, True) for r in schedules]:
            mark = " <- chosen" if _is_chosen(row["settings"], report["chosen"][method], fine_tuning) else ""
            words = ("fine-tuning " if fine_tuning else "") + json.dumps(row["settings"])
            lines.append(f"{method:4s} {words:72s} {row['mean']}{mark}")
    return "\n".join(lines) + "\nwrote " + ", ".join(report["written"])
