"""`cmcd bench paper` and `cmcd bench theory` in --quick mode: the whole pipeline and the file
formats (the numbers of such tiny runs mean nothing); and the verdict rules on made-up runs."""

import json
import logging
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from cmcd.bench import paper as bench_paper
from cmcd.bench import runner
from cmcd.bench import theory as bench_theory
from cmcd.cli import main, progress_on_stderr
from cmcd.eval.records import ZERO_LABEL_HEAD

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_run(method, head, seed, pair="digits-sketch", study="main"):
    return {"study": study, "config": {"pair": pair, "method": method, "seed": seed, "teacher": "ft",
                                       "n_pairs": None},
            "metrics": {"zero_label_acc": {"head": head}}}


def test_compare_calls_a_lead_within_the_seed_spread_a_tie():
    runs = [fake_run("cmc", h, s) for s, h in enumerate([0.80, 0.82, 0.84])]
    runs += [fake_run("l2", h, s) for s, h in enumerate([0.79, 0.80, 0.81])]
    result = bench_paper.compare(runs, "cmc", "l2", ZERO_LABEL_HEAD)
    assert result["difference"] == pytest.approx(0.02)
    assert result["verdict"] == "ties"  # the lead (0.02) is within cmc's spread (0.02)
    runs += [fake_run("cmd", h, s) for s, h in enumerate([0.70, 0.71, 0.72])]
    assert bench_paper.compare(runs, "cmd", "l2", ZERO_LABEL_HEAD)["verdict"] == "loses to"
    assert bench_paper.compare(runs, "cmc", "cmd", ZERO_LABEL_HEAD)["verdict"] == "beats"


def test_the_best_of_a_column_is_marked_only_beyond_the_spread():
    assert bench_paper._best_rows({"a": (0.9, 0.01), "b": (0.8, 0.02)}, False) == {"a"}
    assert bench_paper._best_rows({"a": (0.9, 0.2), "b": (0.8, 0.02)}, False) == set()
    assert bench_paper._best_rows({"a": (0.1, 0.01), "b": (0.5, 0.02)}, True) == {"a"}


def _outputs(out, names):
    for name in names:
        assert (out / name).stat().st_size > 0, name


def test_quick_paper_benchmark_writes_its_files_and_resumes(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["bench", "paper", "--quick", "--out", str(out), "--json"]) == 0
    report = json.loads((out / "paper.json").read_text())
    assert report["benchmark"] == "paper" and report["command"].startswith("cmcd bench paper --quick")
    plan = bench_paper.QUICK
    main_runs = [r for r in report["runs"] if r["study"] == "main"]
    assert {r["config"]["method"] for r in main_runs} == set(plan.methods)
    regime_runs = [r for r in report["runs"] if r["study"] == "regime"]
    assert {(r["config"]["teacher"], r["config"]["n_pairs"]) for r in regime_runs} \
        == {("ssl", 100), ("ssl", None), ("ft", 100)}  # (ft, all pairs) is the main table's
    trained_runs = [r for r in report["runs"] if r["config"]["method"] != "random"]
    assert all(r["metrics"]["steps"] == plan.steps for r in trained_runs)
    for run in report["runs"]:
        assert {"zero_label_acc", "few_label_acc", "retrieval", "tv_distance", "tv_distance_head",
                "wall_s", "device"} <= set(run["metrics"])
    _outputs(out, ["paper.md", "figures/paper-few-label.html", "figures/paper-budget.html",
                   "figures/plotly.min.js"])
    assert (out / "figures" / "paper-few-label.png").read_bytes().startswith(PNG_MAGIC)
    markdown = (out / "paper.md").read_text()
    assert "| cmc |" in markdown and "pair budget" in markdown and "| method vs l2 |" in markdown

    assert "runs to go (0 already done)" in capsys.readouterr().err  # progress lines on stderr
    assert main(["bench", "paper", "--quick", "--out", str(out), "--resume", "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert len(resumed["runs"]) == len(report["runs"])  # nothing was run twice
    (out / "paper.md").unlink()
    assert main(["bench", "paper", "--out", str(out), "--report-only"]) == 0
    assert (out / "paper.md").read_text() == markdown


def test_what_a_worker_process_logs_shows_as_the_parent_shows_its_own(capsys):
    worker_log = logging.getLogger("cmcd.bench.runner")  # a logger pickles by its name
    with progress_on_stderr(), runner._worker_logs() as log_args, ProcessPoolExecutor(
            1, mp_context=get_context("spawn"), initializer=runner._init_worker,
            initargs=(1, *log_args)) as pool:
        pool.submit(worker_log.info, "rendering in a worker").result()
        pool.submit(worker_log.debug, "below the level").result()
    assert capsys.readouterr().err == "cmcd: rendering in a worker\n"


def test_quick_theory_benchmark_writes_calibration_points_verdicts_and_figures(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["bench", "theory", "--quick", "--out", str(out)]) == 0
    plan = bench_theory.QUICK
    assert f"theory plan: {len(bench_theory.planned_runs(plan))} runs" in capsys.readouterr().err
    report = json.loads((out / "theory.json").read_text())
    assert len(report["points"]) == len(plan.arms) * len(plan.seeds) * len(plan.pairs)
    assert {p["arm"] for p in report["points"]} == {arm.name for arm in plan.arms}
    assert {p["fixed_gap"] for p in report["points"]} == {True, False}
    for point in report["points"]:
        assert 0.0 <= point["error"] <= 1.0 and 0.0 <= point["source_error"] <= 1.0
        assert point["tv_low"] <= point["tv"] <= point["tv_high"]
        assert point["tv_wide_low"] <= point["tv_wide"] <= point["tv_wide_high"]
    for estimator in ("tv", "tv_wide"):
        rows = [r for r in report["calibration"] if r["estimator"] == estimator]
        assert {r["true_tv"] for r in rows} >= {0.0, 0.5, 0.9} and max(r["true_tv"] for r in rows) > 0.99
        assert all(set(r) == {"estimator", "family", "true_tv", "estimated_tv", "ci_low", "ci_high"}
                   for r in rows)
    summary = report["summary"]
    assert set(summary) == {"calibration", "saturation", "correlation", "bound"}
    assert summary["calibration"]["tv"]["max_error"] <= 0.1
    assert set(summary["correlation"]) == {"fixed_gap", "all"}
    assert set(summary["correlation"]["all"]["tv"]) == {"by_pair", "pooled"}
    bound = summary["bound"]["tv"]
    assert bound["holds"] + bound["undecided"] + bound["fails"] == len(report["points"])
    for name in ("theory.png", "theory-calibration.png"):
        assert (out / "figures" / name).read_bytes().startswith(PNG_MAGIC)
    markdown = (out / "theory.md").read_text()
    assert "holds / undecided / fails" in markdown and "Calibration on samples of known TV" in markdown
