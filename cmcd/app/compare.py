"""The Compare and Theory tabs: this session's runs against the untrained student and the paper
benchmark, and the theory benchmark's verdict, read from the results files."""

from __future__ import annotations

from cmcd.eval import records
from cmcd.eval.records import RunRecord
from cmcd.eval.results import mean_std, read_results, runs_of
from cmcd.train.objectives import METHODS
from cmcd.viz import theory

COMPARE_COLUMNS = ["student", *(metric.heading for metric in records.COMPARE)]
BENCHMARK_STUDIES = ("main", "ablation")  # the paper benchmark's studies of distilled students
TEACHERS = ("ft", "ssl")  # both are benchmarked; ft (the app's) first


def _cells(metrics: dict) -> list[float]:
    return [metric.read(metrics) for metric in records.COMPARE]


def _mean_std_cell(runs: list[RunRecord], metric: records.Metric, note: str = "") -> str:
    mean, std = mean_std([metric.read(run.metrics) for run in runs])
    return f"{mean:.3f} ± {std:.3f}{note}"


def _benchmark_cells(method: str, runs: list[RunRecord]) -> list[str]:
    if method != "supervised":
        return [_mean_std_cell(runs, metric) for metric in records.COMPARE]
    # the supervised reference has a head of its own: its accuracy stands in the head column
    return [_mean_std_cell(runs, records.ACCURACY, " (its own head)") if metric == records.ZERO_LABEL_HEAD
            else "n/a" if metric in records.TEACHER_SPACE else _mean_std_cell(runs, metric)
            for metric in records.COMPARE]


def _benchmark_rows(pair: str, teachers: list[str]) -> list[list]:
    """The paper benchmark's students of `pair` made with `teachers` (in that order), one row per
    (teacher, method): mean ± std over seeds, the teacher named in the row."""
    paper = read_results("paper")
    if not paper:
        return []
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for study in BENCHMARK_STUDIES:
        for run in runs_of(paper, study, pair):
            if run.config.get("teacher") in teachers:
                groups.setdefault((run.config["teacher"], run.config["method"]), []).append(run)
    order = sorted(groups, key=lambda key: (teachers.index(key[0]), METHODS.index(key[1])))
    return [[f"benchmark: {method}, teacher {teacher} ({len(groups[teacher, method])} seeds)",
             *_benchmark_cells(method, groups[teacher, method])] for teacher, method in order]


def compare_rows(pair: str, session_runs: list[dict] | None = None) -> list[list]:
    """This session's runs of `pair` (each with the untrained student it started from), then the
    paper benchmark's rows of the same teacher as those runs (of both teachers when the session
    has none), when results/paper.json exists. Every row names its teacher."""
    rows, teachers = [], []
    for run in session_runs or []:
        if run["pair"] == pair:
            teacher = run["metrics"]["teacher"]
            teachers += [] if teacher in teachers else [teacher]
            rows.append([f"your run: {run['label']}", *_cells(run["metrics"])])
            rows.append([f"the same student untrained (seed {run['seed']}, teacher {teacher})",
                         *_cells(run["untrained"])])
    return rows + _benchmark_rows(pair, teachers or list(TEACHERS))


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
