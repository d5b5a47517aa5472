"""The Compare and Theory tabs: this session's runs against the untrained student and the paper
benchmark, and the theory benchmark's verdict, read from the results files."""

from __future__ import annotations

from cmcd.eval import records
from cmcd.eval.records import RunRecord
from cmcd.eval.results import mean_std, read_results, runs_of
from cmcd.train.objectives import METHODS
from cmcd.viz import theory

COMPARE_COLUMNS = ["student", *(metric.heading for metric in records.COMPARE)]


def _cells(metrics: dict) -> list[float]:
    return [metric.read(metrics) for metric in records.COMPARE]


def _benchmark_rows(pair: str) -> list[list]:
    """Every method of the paper benchmark's main study on `pair`: mean ± std over seeds."""
    paper = read_results("paper")
    if not paper:
        return []
    by_method: dict[str, list[RunRecord]] = {}
    for run in runs_of(paper, "main", pair):
        by_method.setdefault(run.config["method"], []).append(run)
    rows = []
    for method in sorted(by_method, key=METHODS.index):
        runs = by_method[method]
        cells = [mean_std([metric.read(run.metrics) for run in runs]) for metric in records.COMPARE]
        rows.append([f"benchmark: {method} ({len(runs)} seeds)",
                     *(f"{mean:.3f} ± {std:.3f}" for mean, std in cells)])
    return rows


def compare_rows(pair: str, session_runs: list[dict] | None = None) -> list[list]:
    """This session's runs of `pair` (each with the untrained student it started from), then every
    method of the paper benchmark on the pair, when results/paper.json exists."""
    rows = []
    for run in session_runs or []:
        if run["pair"] == pair:
            rows.append([f"your run: {run['label']}", *_cells(run["metrics"])])
            rows.append([f"the same student untrained (seed {run['seed']})", *_cells(run["untrained"])])
    return rows + _benchmark_rows(pair)


def theory_figure():
    """Error against estimated TV from results/theory.json (None before the benchmark ran, or
    when the file predates the calibrated TV estimate)."""
    report = read_results("theory")
    return theory.plotly_figure(report) if theory.is_current(report) else None


def theory_text() -> str:
    report = read_results("theory")
    bound = ("**What the paper's bound says.** The student's error on the target modality is at "
             "most the teacher's error on the source plus the total-variation (TV) distance "
             "between the two latent distributions (and a term for how differently the two "
             "modalities are labelled). So the closer distillation brings the student's "
             "embeddings to the teacher's, the less accuracy it can lose.")
    if not report:
        return bound + "\n\nRun `cmcd bench theory` to measure it here."
    if not theory.is_current(report):
        return bound + ("\n\n`results/theory.json` predates the calibrated TV estimate; run "
                        "`cmcd bench theory` again to measure it here.")
    return (bound + f"\n\n**What we measured** (`{report['command']}`, {len(report['points'])} "
            f"students on {report['device']}; hover a point for its pair, arm and seed):\n\n"
            + "\n".join(f"- {line}" for line in theory.verdict_lines(report)))
