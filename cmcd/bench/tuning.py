"""`cmcd bench tuning`: every distillation method gets the same validation sweep.

Each of cmc, cmd, l2, crd, socket, rkd, pkt, affinity and cmc+l2 gets the same number of
configurations over its own knobs (learning rate, temperature(s), loss weights, number of
negatives, for rkd and pkt their L2 anchor switched off; the first configuration
of each list is its default), trained with the ssl teacher for exactly the step count of the paper
benchmark's runs, on three pairs (one per target modality, both datasets), with a seed of its own
(TUNING_SEED, never a test seed). A configuration's score is its zero-label head accuracy on the
*validation* split after training, averaged over the pairs; the test split is never read. The best
score wins (ties: the earlier configuration).

SOCKET is L2 plus a spread term, so it is tuned the way an added regulariser is: it starts from the
settings L2 chose and spends its six configurations on the spread weight, all above 0 (at 0 it is
L2, whose row the table already has), so it may score below L2 on validation when the spread term
hurts. Its runs therefore follow the others'.

The same command chooses step 3's fine-tuning schedule (lr, steps of `few_label_ft_acc`): a CMC
student per tuning pair, fine-tuned under each candidate schedule on 1/5/10 labels per class and
scored on validation items.

Writes results/tuning.json: every run, every configuration's scores ("candidates"), the chosen
settings per method ("chosen") and the fine-tuning schedule ("finetune"). `cmcd bench paper` reads
the chosen settings from there.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from cmcd.bench import runner as bench_runs
from cmcd.data.cache import atomic_write_json
from cmcd.train.config import DistillConfig
from cmcd.train.distill import validation_run
from cmcd.train.finetune import Schedule

TUNING_SEED = 1000  # the benchmarks' test seeds count from 0
TEACHER = "ssl"
# Six configurations per method, each over its own knobs; the first is the method's default.
CANDIDATES: dict[str, tuple[dict, ...]] = {
    "cmc": ({}, {"temperature": 0.1}, {"temperature": 0.2}, {"temperature": 0.5},
            {"negatives": "bank"}, {"lr": 1e-3}),
    "cmd": ({}, {"teacher_temperature": 0.05, "student_temperature": 0.2},
            {"teacher_temperature": 0.04, "student_temperature": 0.1},
            {"teacher_temperature": 0.1, "student_temperature": 0.5}, {"negatives": "bank"},
            {"lr": 1e-3}),
    "l2": ({}, {"lr": 1e-3}, {"lr": 2e-3}, {"lr": 6e-3}, {"lr": 1e-2}, {"normalize": False}),
    "crd": ({}, {"num_negatives": 256}, {"num_negatives": 256, "temperature": 0.1},
            {"num_negatives": 256, "temperature": 0.5}, {"num_negatives": 256, "lr": 1e-3},
            {"num_negatives": 64}),
    "rkd": ({}, {"l2_weight": 0.0}, {"distance_weight": 5.0, "angle_weight": 10.0},
            {"distance_weight": 100.0, "angle_weight": 200.0}, {"lr": 6e-3}, {"lr": 1e-3}),
    "pkt": ({}, {"l2_weight": 0.0}, {"pkt_weight": 10.0}, {"pkt_weight": 1000.0}, {"lr": 6e-3},
            {"lr": 1e-3}),
    "affinity": ({}, {"temperature": 0.05}, {"temperature": 0.1}, {"temperature": 0.5}, {"lr": 6e-3},
                 {"lr": 1e-3}),
    "cmc+l2": ({}, {"l2_weight": 0.5}, {"l2_weight": 2.0}, {"temperature": 0.2},
               {"temperature": 0.5}, {"lr": 1e-3}),
}
# method -> (the method whose chosen settings it starts from, its own knob, that knob's values).
# No weight 0: SOCKET without its spread term is L2, and its row would only repeat L2's.
DERIVED = {"socket": ("l2", "stats_weight", (1.0, 0.03, 0.1, 0.3, 3.0, 10.0))}
SCHEDULES = (Schedule(10, 1e-4), Schedule(10, 3e-4), Schedule(20, 3e-5), Schedule(20, 1e-4))


@dataclass(frozen=True)
class Plan:
    pairs: tuple[str, ...]
    methods: tuple[str, ...]
    candidates: int  # configurations per method: the first of each list
    schedules: tuple[Schedule, ...]  # fine-tuning schedules to choose from
    seeds: tuple[int, ...] = (TUNING_SEED,)
    steps: int | None = None  # None: the paper benchmark's (a default run's on all pairs)
    budget: float = 1.0  # x those steps: the budget `cmcd bench budget` chose
    width: int | None = None  # None: the student's default width


FULL = Plan(pairs=("digits-depth", "digits-audio", "fashion-sketch"),
            methods=("cmc", "cmd", "l2", "crd", "socket", "rkd", "pkt", "affinity", "cmc+l2"), candidates=6,
            schedules=SCHEDULES)
# CI: the pipeline and the file format on tiny runs; its choices mean nothing. A narrow student:
# the cost of a quick run is its evaluation (few-label fine-tuning on every validation item).
QUICK = Plan(pairs=("digits-depth",), methods=("l2", "socket"), candidates=2,
             schedules=(Schedule(1, 1e-4), Schedule(1, 1e-3)), steps=3, width=4)


def candidates(plan: Plan, method: str, report: dict | None = None) -> tuple[dict, ...]:
    """A method's configurations; a derived method's (SOCKET's) need the runs its base chose from."""
    if method not in DERIVED:
        return CANDIDATES[method][:plan.candidates]
    base, knob, values = DERIVED[method]
    start = choose(_rows(report, plan, base)) if report else {}
    return tuple({**start, knob: value} for value in values[:plan.candidates])


def config_of(plan: Plan, pair: str, method: str, seed: int, settings: dict) -> DistillConfig:
    steps = max(1, round((plan.steps or bench_runs.default_steps(pair)) * plan.budget))
    student = {"width": plan.width} if plan.width else {}
    return DistillConfig.from_flat(pair=pair, method=method, teacher=TEACHER, steps=steps, seed=seed,
                                   **student, **settings)


def planned_runs(plan: Plan, report: dict | None = None) -> list[tuple[str, DistillConfig]]:
    """Every run: without `report`, those of the methods that need no other's choice (and the
    fine-tuning study); with it, the derived methods' too."""
    methods = [m for m in plan.methods if report is not None or m not in DERIVED]
    runs = [("sweep", config_of(plan, pair, method, seed, settings))
            for method in methods for settings in candidates(plan, method, report)
            for pair in plan.pairs for seed in plan.seeds]
    runs += [("finetune", config_of(plan, pair, "cmc", seed, {}))
             for pair in plan.pairs for seed in plan.seeds]
    return runs


def validation_job(study: str, config: dict, schedules: tuple[Schedule, ...]) -> dict:
    """A tuning run: train and score on validation (with the schedules, for the finetune study)."""
    return validation_run(DistillConfig.from_dict(config), schedules if study == "finetune" else ())


def _matches(run: dict, plan: Plan, method: str, settings: dict) -> bool:
    """Whether a run of the report is this configuration's (on whatever device it ran)."""
    config = config_of(plan, run["config"]["pair"], method, run["config"]["seed"], settings).to_dict()
    return run["study"] == "sweep" and {**run["config"], "device": config["device"]} == config


def _rows(report: dict, plan: Plan, method: str) -> list[dict]:
    """Each configuration of `method` with its validation accuracy per pair and their mean."""
    rows = []
    for settings in candidates(plan, method, report):
        runs = [r for r in report["runs"] if _matches(r, plan, method, settings)]
        scores = {r["config"]["pair"]: r["metrics"]["validation"]["accuracy"] for r in runs}
        rows.append({"settings": settings, "validation_accuracy": scores,
                     "mean": round(statistics.fmean(scores.values()), 4) if scores else None})
    return rows


def score_candidates(report: dict, plan: Plan) -> dict[str, list[dict]]:
    return {method: _rows(report, plan, method) for method in plan.methods}


def choose(rows: list[dict]) -> dict:
    """The settings of the best mean score; the earlier configuration wins a tie."""
    scored = [row for row in rows if row["mean"] is not None]
    return max(scored, key=lambda row: row["mean"])["settings"] if scored else {}


def score_schedules(report: dict, plan: Plan) -> dict:
    """Each fine-tuning schedule's validation accuracy (mean over shots and pairs), and the best."""
    runs = [r for r in report["runs"] if r["study"] == "finetune"]
    rows = []
    for schedule in plan.schedules:
        key = f"{schedule.steps}@{schedule.lr:g}"
        per_pair = {r["config"]["pair"]: statistics.fmean(r["metrics"]["few_label_ft_val"][key].values())
                    for r in runs}
        rows.append({"steps": schedule.steps, "lr": schedule.lr, "validation_accuracy": per_pair,
                     "mean": round(statistics.fmean(per_pair.values()), 4) if per_pair else None})
    best = max(rows, key=lambda row: row["mean"] if row["mean"] is not None else -1.0)
    return {"method": "cmc", "schedules": rows, "chosen": {"steps": best["steps"], "lr": best["lr"]}}


def summarise(report: dict, plan: Plan) -> dict:
    """The report with only this plan's runs (a sweep resumed at another budget still holds the
    earlier budget's), each candidate's scores, the choices and the fine-tuning schedule's."""
    report = bench_runs.planned_only(report, planned_runs(plan, report))
    table = score_candidates(report, plan)
    return {**report, "candidates": table, "chosen": {m: choose(rows) for m, rows in table.items()},
            "finetune": score_schedules(report, plan)}


def plan_size(plan: Plan) -> str:
    runs = len(plan.methods) * plan.candidates * len(plan.pairs) * len(plan.seeds) + len(plan.pairs)
    return (f"{runs} runs: {len(plan.methods)} methods x {plan.candidates} configurations x "
            f"{len(plan.pairs)} pairs x {len(plan.seeds)} seed, and {len(plan.pairs)} CMC students "
            f"fine-tuned under {len(plan.schedules)} schedules")


def run(out: str = "results", quick: bool = False, seeds: int | None = None, workers: int = 1,
        resume: bool = False, report_only: bool = False, command: str = "",
        device: str = "auto") -> dict:
    if seeds:
        raise ValueError(f"cmcd bench tuning uses a seed of its own ({TUNING_SEED}), never a test "
                         "seed; --seeds does not apply")
    budget, why = (1.0, "x1 (--quick)") if quick else chosen_budget(out)
    plan = dataclasses.replace(QUICK if quick else FULL, budget=budget)
    bench_runs.log.info(f"tuning plan: {plan_size(plan)}; budget {why}")
    common = {"quick": quick, "workers": workers, "report_only": report_only, "command": command,
              "device": device, "kind": bench_runs.RunKind(
                  functools.partial(validation_job, schedules=plan.schedules), bench_runs.prepare,
                  bench_runs.DISTILLATION.result),
              "settings": {**dataclasses.asdict(plan), "teacher": TEACHER,
                           "score": "validation accuracy", "derived": DERIVED,
                           "schedules": [dataclasses.asdict(s) for s in plan.schedules],
                  "budget": {"multiplier": budget, "why": why}}}
    report = bench_runs.load_or_execute("tuning", plan, planned_runs, out, resume=resume, **common)
    if not report_only:  # then the methods that start from another's choice
        report = bench_runs.load_or_execute("tuning", plan, lambda p: planned_runs(p, report), out,
                                            resume=True, **common)
    report = summarise(report, plan)
    path = Path(out) / "tuning.json"
    atomic_write_json(path, report)
    return {**report, "written": [str(path)]}


def chosen_settings(out: str | Path) -> tuple[dict[str, dict], dict]:
    """(settings per method, fine-tuning schedule {"steps", "lr"}) chosen by `cmcd bench tuning`,
    read from out/tuning.json."""
    path = Path(out) / "tuning.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `cmcd bench tuning` first (it chooses every "
                                "method's settings on validation), or use --quick for the defaults")
    tuning = json.loads(path.read_text())
    if tuning.get("quick") or "chosen" not in tuning:
        raise ValueError(f"{path} comes from `cmcd bench tuning --quick` or an older sweep; run "
                         "`cmcd bench tuning` (without --quick) first")
    return tuning["chosen"], tuning["finetune"]["chosen"]


def chosen_budget(out: str | Path) -> tuple[float, str]:
    """(multiplier of the paper benchmark's steps, where it comes from), for the tuning and paper
    benchmarks: the choice in out/budget.json (`cmcd bench budget`), or 1 without a full one."""
    path = Path(out) / "budget.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    if report.get("quick") or "choice" not in report:
        found = "a --quick one" if report.get("quick") else "an unfinished one" if report else "none"
        return 1.0, (f"x1, a default run's steps (no results/budget.json from a full, finished "
                     f"`cmcd bench budget`: {found})")
    choice = report["choice"]
    return float(choice["multiplier"]), f"x{choice['multiplier']:g} from budget.json: {choice['reason']}"


def format_report(report: dict) -> str:
    lines = []
    for method, rows in report["candidates"].items():
        for row in rows:
            mark = " <- chosen" if row["settings"] == report["chosen"][method] else ""
            lines.append(f"{method:7s} {json.dumps(row['settings']):60s} {row['mean']}{mark}")
    for row in report["finetune"]["schedules"]:
        lines.append(f"fine-tuning {row['steps']} steps at lr {row['lr']:g}: {row['mean']}")
    return "\n".join(lines) + "\nwrote " + ", ".join(report["written"])
