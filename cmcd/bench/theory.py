"""`cmcd bench theory`: does the target error grow with the TV distance between the teacher's
(source) and the student's (target) latent distributions, as the paper's bound says?

Each pair's renderer has a `gap` knob that widens the modality gap (see `cmcd pairs`). At every
gap level a student is distilled with CMC and with L2; for each we record the estimated TV (in the
embedding space, and as the teacher's head sees it) and the target error, 1 - zero-label head
accuracy. Spearman's rho over all points, per method and per pair says how well TV orders the
errors. Writes results/theory.json and results/figures/theory.{png,html}.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from cmcd.bench import runner as bench_runs
from cmcd.data import pairs
from cmcd.data.cache import atomic_write_bytes, atomic_write_json
from cmcd.eval.results import group
from cmcd.train.config import DistillConfig
from cmcd.viz import figures
from cmcd.viz.theory import TITLE, TV_KINDS, panels


@dataclass(frozen=True)
class Plan:
    pairs: tuple[str, ...]
    gaps: tuple[float, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    steps: int | None = None  # None: a default run's steps


FULL = Plan(pairs=tuple(pairs.PAIRS), gaps=(0.0, 0.33, 0.67, 1.0), methods=("cmc", "l2"), seeds=(0,))
QUICK = Plan(pairs=("digits-depth",), gaps=(0.0, 1.0), methods=("cmc", "l2"), seeds=(0,), steps=3)


def planned_runs(plan: Plan) -> list[tuple[str, DistillConfig]]:
    return [("theory", DistillConfig(pair=pair, method=method, gap=gap, seed=seed,
                                     steps=plan.steps or bench_runs.default_steps(pair)))
            for pair in plan.pairs for gap in plan.gaps for method in plan.methods for seed in plan.seeds]


def points(runs: list[dict]) -> list[dict]:
    return [{"pair": r["config"]["pair"], "method": r["config"]["method"], "gap": r["config"]["gap"],
             "seed": r["config"]["seed"], "error": round(1 - r["metrics"]["zero_label_acc"]["head"], 4),
             **{kind: r["metrics"][kind] for kind in TV_KINDS}} for r in runs]


def _rho(rows: list[dict], kind: str) -> float | None:
    x, y = [r[kind] for r in rows], [r["error"] for r in rows]
    if len(rows) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return round(float(spearmanr(x, y).statistic), 3)


def summary(rows: list[dict]) -> dict:
    """Spearman rho between TV and error: over all points, per method, per pair; and a fitted line."""
    result = {}
    for kind in TV_KINDS:
        x = [r[kind] for r in rows]
        fit = np.polyfit(x, [r["error"] for r in rows], 1) if len(set(x)) > 1 else None
        result[kind] = {
            "spearman_all": _rho(rows, kind),
            "spearman_by_method": {m: _rho(chosen, kind) for (m,), chosen in group(rows, "method").items()},
            "spearman_by_pair": {p: _rho(chosen, kind) for (p,), chosen in group(rows, "pair").items()},
            "fit": None if fit is None else {"slope": round(float(fit[0]), 4),
                                             "intercept": round(float(fit[1]), 4)},
        }
    return result


def markdown(report: dict) -> str:
    by_method = report["summary"]["tv_distance_head"]["spearman_by_method"]
    by_pair = report["summary"]["tv_distance_head"]["spearman_by_pair"]
    lines = [f"Device: {report['device']}; {len(report['runs'])} runs in {report['wall_s'] / 60:.1f} min; "
             f"gap levels {', '.join(str(g) for g in sorted({p['gap'] for p in report['points']}))}.", "",
             "| TV estimate | Spearman ρ, all points | " + " | ".join(f"ρ, {m}" for m in by_method) +
             " | " + " | ".join(f"ρ, {p}" for p in by_pair) + " |"]
    columns = 1 + len(by_method) + len(by_pair)
    lines.append("| --- |" + " --- |" * columns)
    for kind, title in TV_KINDS.items():
        stats = report["summary"][kind]
        values = [stats["spearman_all"], *stats["spearman_by_method"].values(),
                  *stats["spearman_by_pair"].values()]
        lines.append(f"| {title} | " + " | ".join("–" if v is None else f"{v:.2f}" for v in values) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(report: dict, out: Path) -> list[Path]:
    out = Path(out)
    atomic_write_bytes(out / "theory.md", markdown(report).encode())
    return [out / "theory.json", out / "theory.md",
            *figures.save(panels(report), TITLE, out / "figures" / "theory", columns=2)]


def run(out: str = "results", quick: bool = False, seeds: int | None = None, workers: int = 1,
        resume: bool = False, report_only: bool = False, command: str = "",
        device: str = "auto") -> dict:
    plan = bench_runs.choose_plan(FULL, QUICK, quick, seeds)
    report = bench_runs.load_or_execute("theory", plan, planned_runs, out, quick=quick,
                                        workers=workers, resume=resume, report_only=report_only,
                                        command=command, device=device)
    report["points"] = points(report["runs"])
    report["summary"] = summary(report["points"])
    atomic_write_json(Path(out) / "theory.json", report)
    report["written"] = [str(p) for p in write_outputs(report, out)]
    return report


def format_report(report: dict) -> str:
    return markdown(report) + "\nwrote " + ", ".join(report["written"])
