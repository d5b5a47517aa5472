"""`cmcd bench tuning`, `paper` and `theory` in --quick mode: the whole pipeline and the file
formats (the numbers of such tiny runs mean nothing); the plans (equal tuning budgets, the paper's
setting, the tuned settings read back); and the verdicts on made-up runs."""

import dataclasses
import json
import logging
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from cmcd.bench import budget as bench_budget
from cmcd.bench import claim_size, runner
from cmcd.bench import paper as bench_paper
from cmcd.bench import theory as bench_theory
from cmcd.bench import tuning as bench_tuning
from cmcd.cli import main
from cmcd.modalities import pairs
from cmcd.runtime import progress_on_stderr
from cmcd.train.config import DistillConfig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_run(method, accuracy, seed, pair="digits-sketch", study="main", ft10=None):
    return {"study": study, "config": {"pair": pair, "method": method, "seed": seed,
                                       "teacher": bench_paper.STUDIES[study], "n_pairs": None},
            "metrics": {"accuracy": accuracy, "few_label_ft_acc": {"10": accuracy if ft10 is None
                                                                   else ft10}}}


def test_tuning_gives_every_method_the_same_budget_at_the_benchmarks_step_count():
    plan = bench_tuning.FULL
    runs = bench_tuning.planned_runs(plan)
    sweep = [config for study, config in runs if study == "sweep"]
    assert set(plan.methods) == {"cmc", "cmd", "l2", "crd", "socket", "rkd", "pkt", "affinity", "cmc+l2"}
    assert {len(bench_tuning.candidates(plan, method)) for method in plan.methods} == {6}
    assert {c.teacher for c in sweep} == {"ssl"}
    assert all(c.steps == runner.default_steps(c.pair) for c in sweep)  # the paper's step count
    paper = bench_paper.FULL
    assert not {c.seed for _, c in runs} & set(paper.seeds + paper.ablation_seeds)
    assert len(runs) + 6 * len(plan.pairs) <= 170 and bench_tuning.plan_size(plan).startswith("165 runs")


def test_socket_starts_from_what_l2_chose_and_always_keeps_its_spread_term():
    plan = bench_tuning.FULL
    scores = {1e-3: 0.5, 6e-3: 0.7}  # L2's best learning rate: 0.006
    l2_runs = [{"study": "sweep",
                "config": bench_tuning.config_of(plan, pair, "l2", seed, settings).to_dict(),
                "metrics": {"validation": {"accuracy": scores.get(settings.get("lr"), 0.6)}}}
               for settings in bench_tuning.candidates(plan, "l2") for pair in plan.pairs
               for seed in plan.seeds]
    report = {"runs": l2_runs}
    socket = bench_tuning.candidates(plan, "socket", report)
    assert len(socket) == 6 and all(settings["lr"] == 6e-3 for settings in socket)
    assert all(settings["stats_weight"] > 0 for settings in socket)  # at 0 it would be L2 again
    derived = [c for study, c in bench_tuning.planned_runs(plan, report) if c.method == "socket"]
    assert len(derived) == 6 * len(plan.pairs)


def test_tuning_chooses_the_best_validation_mean_worked_out_by_hand():
    plan = bench_tuning.QUICK  # l2 and socket on digits-depth, two configurations each

    def run(method, settings, metrics, study="sweep"):
        config = bench_tuning.config_of(plan, "digits-depth", method, plan.seeds[0], settings)
        return {"study": study, "config": config.to_dict(), "metrics": metrics}

    runs = [run("l2", {}, {"validation": {"accuracy": 0.4}}),
            run("l2", {"lr": 1e-3}, {"validation": {"accuracy": 0.7}}),
            run("socket", {"lr": 1e-3, "stats_weight": 1.0}, {"validation": {"accuracy": 0.6}}),
            run("socket", {"lr": 1e-3, "stats_weight": 0.03}, {"validation": {"accuracy": 0.6}}),
            run("cmc", {}, {"few_label_ft_val": {"1@0.0001": {"1": 0.2, "5": 0.4},
                                                 "1@0.001": {"1": 0.5, "5": 0.6}}}, "finetune")]
    report = bench_tuning.summarise({"runs": runs}, plan)
    assert [row["mean"] for row in report["candidates"]["l2"]] == [0.4, 0.7]
    # socket starts from l2's choice; its two configurations tie, and the earlier one wins
    assert report["chosen"] == {"l2": {"lr": 1e-3}, "socket": {"lr": 1e-3, "stats_weight": 1.0}}
    assert [row["mean"] for row in report["finetune"]["schedules"]] == [0.3, 0.55]
    assert report["finetune"]["chosen"] == {"steps": 1, "lr": 1e-3}
    # a resumed sweep at another budget still holds the earlier budget's runs: they are not scored
    earlier = run("cmc", {}, {"few_label_ft_val": {"1@0.0001": {"1": 0.9, "5": 0.9},
                                                   "1@0.001": {"1": 0.1, "5": 0.1}}}, "finetune")
    earlier["config"]["steps"] *= 2
    resumed = bench_tuning.summarise({"runs": [*runs, earlier]}, plan)
    assert resumed["finetune"] == report["finetune"]


def test_quick_tuning_scores_on_validation_in_a_process_pool_resumes_and_reports_without_training(
        tmp_path, monkeypatch, capsys):
    pools = []

    class CountedPool(runner.ProcessPoolExecutor):
        def __init__(self, max_workers=None, **options):
            pools.append(max_workers)
            super().__init__(max_workers=max_workers, **options)

    monkeypatch.setattr(runner, "ProcessPoolExecutor", CountedPool)
    out = tmp_path / "results"
    assert main(["bench", "tuning", "--quick", "--workers", "2", "--out", str(out)]) == 0
    assert pools and set(pools) == {2}
    report = json.loads((out / "tuning.json").read_text())
    plan = bench_tuning.QUICK
    assert len(report["runs"]) == len(bench_tuning.planned_runs(plan, report))
    assert report["benchmark"] == "tuning" and report["quick"]
    for run in report["runs"]:  # validation only: no test metric was computed
        assert "validation" in run["metrics"] and "accuracy" not in run["metrics"]
        assert "zero_label_acc" not in run["metrics"]
    for method in plan.methods:
        rows = report["candidates"][method]
        assert [row["settings"] for row in rows] == list(bench_tuning.candidates(plan, method, report))
        assert all(set(row["validation_accuracy"]) == set(plan.pairs) for row in rows)
        assert report["chosen"][method] in [row["settings"] for row in rows]  # which: see below
    assert report["candidates"]["socket"][1]["settings"] == {**report["chosen"]["l2"], "stats_weight": 0.03}
    schedules = report["finetune"]["schedules"]
    assert len(schedules) == len(plan.schedules) and report["finetune"]["chosen"] in [
        {"steps": row["steps"], "lr": row["lr"]} for row in schedules]
    with pytest.raises(ValueError, match="--quick"):  # the paper benchmark refuses it
        bench_tuning.chosen_settings(out)

    # a run done by a worker process gives what the same run gives in this one
    sweep = next(run for run in report["runs"] if run["study"] == "sweep")
    alone = bench_tuning.validation_job("sweep", sweep["config"], plan.schedules)
    assert alone["validation"] == sweep["metrics"]["validation"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was run again")

    monkeypatch.setattr(bench_tuning, "validation_job", no_training)
    capsys.readouterr()
    for flag in ("--resume", "--report-only"):
        assert main(["bench", "tuning", "--quick", flag, "--out", str(out), "--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        assert again["runs"] == report["runs"] and again["chosen"] == report["chosen"], flag

    # a run of another step budget (a sweep made before the budget study chose) leaves the file
    other_budget = {**sweep, "config": {**sweep["config"], "steps": 2 * (sweep["config"]["steps"] or 1)}}
    (out / "tuning.json").write_text(json.dumps({**report, "runs": [*report["runs"], other_budget]}))
    assert main(["bench", "tuning", "--quick", "--report-only", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == report["runs"]


def test_the_paper_benchmark_reads_the_tuned_settings_or_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="cmcd bench tuning"):
        bench_tuning.chosen_settings(tmp_path)
    (tmp_path / "tuning.json").write_text(json.dumps({
        "quick": False, "chosen": {"cmc": {"temperature": 0.2}, "socket": {"stats_weight": 0.0, "lr": 0.001}},
        "finetune": {"chosen": {"steps": 7, "lr": 0.002}}}))
    chosen, finetune = bench_tuning.chosen_settings(tmp_path)
    plan = bench_paper.FULL
    runs = bench_paper.planned_runs(plan, chosen, finetune)
    main_runs = [c for study, c in runs if study == "main"]
    ablation = [c for study, c in runs if study == "ablation"]
    assert {c.teacher for c in main_runs} == {"ssl"} and {c.teacher for c in ablation} == {"ft"}
    assert {c.seed for c in main_runs} == set(range(5)) and {c.seed for c in ablation} == set(range(3))
    assert {c.pair for c in main_runs} == {*pairs.PAIRS, "digits-audio-recorded"}  # real recordings too
    assert {c.method for c in main_runs} == {"cmc", "cmd", "l2", "crd", "socket", "rkd", "pkt", "affinity",
                                             "cmc+l2", "random", "supervised"}
    assert all(c.loss.temperature == 0.2 for c in main_runs if c.method == "cmc")
    assert all((c.loss.stats_weight, c.lr) == (0.0, 0.001) for c in main_runs if c.method == "socket")
    assert all((c.finetune_steps, c.finetune_lr) == (7, 0.002) for c in main_runs + ablation)
    for c in main_runs:
        budget = runner.default_steps(c.pair) * (bench_paper.SUPERVISED_BUDGET if c.method == "supervised"
                                                 else 1)
        assert c.steps == budget
    assert [c.method for study, c in runs if study == "cost"] == ["target-ssl"]


def test_verdicts_pair_by_seed_hold_each_family_apart_and_agree_with_their_words():
    runs = []
    for seed in range(5):
        noise = 0.01 * seed
        runs += [fake_run("l2", 0.70 + noise, seed), fake_run("crd", 0.74 + noise, seed),
                 fake_run("socket", 0.70 + noise, seed),
                 fake_run("cmc", 0.75 + noise + 0.002 * (seed % 2), seed),  # beats l2, ties crd
                 fake_run("cmd", 0.70 + noise + 0.003 * (-1) ** seed, seed),
                 fake_run("cmc+l2", 0.76 + noise + 0.002 * (seed % 3), seed)]
    rows = bench_paper.verdicts(runs)
    keys = [(r["pair"], r["teacher"], r["metric"], r["method"], r["baseline"]) for r in rows]
    assert len(keys) == len(set(keys))  # no cell counted twice
    families = {family: {(r["method"], r["baseline"]) for r in rows if r["family"] == family}
                for family in {r["family"] for r in rows}}
    assert families["paper's losses"] == {(m, b) for m in ("cmc", "cmd") for b in ("l2", "crd", "socket")}
    # (the fake runs hold three of the six baselines: cells need runs of both methods)
    assert {m for m, _ in families["ours"]} == {"cmc+l2"}
    by_cell = {(r["metric"], r["method"], r["baseline"]): r for r in rows}
    assert by_cell[("accuracy", "cmc", "l2")]["verdict"] == "beats"
    assert by_cell[("accuracy", "cmd", "l2")]["verdict"] == "ties"
    for row in rows:
        excludes_zero = row["ci_low"] > 0 or row["ci_high"] < 0
        assert excludes_zero == (row["verdict"] != "ties"), row
    accuracy = [r for r in rows if r["metric"] == "accuracy"]
    assert bench_paper.verdict_sentence(accuracy, "cmc", "l2") \
        == "cmc beats l2 on 1 of 1 pairs, ties on 0 and loses on 0"
    assert "| digits-sketch | +5." in bench_paper.verdict_table(accuracy, ("cmc",), ("l2",))


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
    assert {r["config"]["teacher"] for r in main_runs} == {"ssl"}
    assert {r["config"]["teacher"] for r in report["runs"] if r["study"] == "ablation"} == {"ft"}
    for run in main_runs:
        metrics = run["metrics"]
        assert {"accuracy", "zero_label_acc", "few_label_acc", "retrieval", "wall_s",
                "finetune_s"} <= set(metrics)
        assert set(metrics["few_label_ft_acc"]) == {"1", "5", "10"}
        steps = plan.steps * (bench_paper.SUPERVISED_BUDGET if run["config"]["method"] == "supervised" else 1)
        assert metrics["steps"] == (0 if run["config"]["method"] == "random" else steps)
    [supervised] = [r["metrics"] for r in main_runs if r["config"]["method"] == "supervised"]
    assert supervised["selected_epoch"] >= 1
    assert {(r["method"], r["baseline"]) for r in report["verdicts"] if r["family"] == "paper's losses"} \
        == {("cmc", "l2")}
    differences = [r for r in report["verdicts"] if r["kind"] == "difference"]
    assert all(set(r) >= {"pair", "teacher", "metric", "method", "baseline", "diff_mean", "ci_low",
                          "ci_high", "ci95_low", "ci95_high", "p_holm", "verdict"} for r in differences)
    claim = [r for r in report["verdicts"] if r["kind"] == "claim-size"]
    assert [(r["method"], r["baseline"]) for r in claim] == [("cmc", "l2")]  # quick: l2 the one baseline
    assert {"ci95_low", "ci95_high", "p_above_holm", "p_below_holm", "baseline_chosen_on"} <= set(claim[0])
    _outputs(out, ["paper.md", "figures/paper-few-label.html", "figures/paper-few-label-ft.html",
                   "figures/plotly.min.js"])
    assert (out / "figures" / "paper-few-label.png").read_bytes().startswith(PNG_MAGIC)
    markdown = (out / "paper.md").read_text()
    assert "| cmc |" in markdown and "teacher ft" in markdown and "`target-ssl`" in markdown

    assert "runs to go (0 already done)" in capsys.readouterr().err  # progress lines on stderr
    assert main(["bench", "paper", "--quick", "--out", str(out), "--resume", "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert len(resumed["runs"]) == len(report["runs"])  # nothing was run twice
    (out / "paper.md").unlink()
    assert main(["bench", "paper", "--quick", "--out", str(out), "--report-only"]) == 0
    assert (out / "paper.md").read_text() == markdown

    report["runs"] = [r for r in report["runs"] if r["study"] == "main"]  # a report read mid-run
    (out / "paper.json").write_text(json.dumps(report))
    assert main(["bench", "paper", "--quick", "--out", str(out), "--report-only"]) == 0
    ablation = (out / "paper.md").read_text().split("### Ablation")[1]
    assert "No runs yet." in ablation and "over 0 seeds" not in ablation


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
    assert set(summary) == {"calibration", "spread", "saturation", "correlation", "bound"}
    assert summary["spread"]["tv"]["levels"] >= 4 and summary["spread"]["tv"]["max_loss"] > 0
    assert summary["calibration"]["tv"]["max_error"] <= 0.1
    assert set(summary["correlation"]) == {"fixed_gap", "gap_sweep", "all"}
    assert {p["arm"] for p in report["points"] if p["gap_sweep"]} == {"cmc", "cmc, gap 1"}
    assert set(summary["correlation"]["all"]["tv"]) == {"by_pair", "pooled", "bootstrap"}
    bound = summary["bound"]["tv"]
    assert bound["holds"] + bound["undecided"] + bound["fails"] == len(report["points"])
    for name in ("theory.png", "theory-calibration.png"):
        assert (out / "figures" / name).read_bytes().startswith(PNG_MAGIC)
    markdown = (out / "theory.md").read_text()
    assert "holds / undecided / fails" in markdown and "Calibration on samples of known TV" in markdown


def test_theory_students_train_with_the_settings_the_tuning_sweep_chose(tmp_path):
    assert bench_theory.tuned_settings(tmp_path)[0] == {}  # no sweep: every method at its defaults
    chosen = {"cmc": {"temperature": 0.2}, "l2": {"lr": 0.006}}
    (tmp_path / "tuning.json").write_text(json.dumps({"chosen": chosen, "finetune": {"chosen": {}}}))
    assert bench_theory.tuned_settings(tmp_path)[0] == chosen
    configs = [config for _, config in bench_theory.planned_runs(bench_theory.FULL, chosen)]
    assert {c.loss.temperature for c in configs if c.method == "cmc"} == {0.2}  # gap sweep included
    assert {c.lr for c in configs if c.method == "l2"} == {0.006}
    assert {c.lr for c in configs if c.method == "cmd"} == {DistillConfig().lr}
    settings = {"arms": [{"method": "cmc"}, {"method": "l2"}], "chosen": chosen, "chosen_why": "tuning"}
    assert "cmc (temperature 0.2), l2 (lr 0.006)" in bench_theory.settings_note(settings)


def test_theory_never_trains_the_same_student_twice():
    configs = [config for _, config in bench_theory.planned_runs(bench_theory.FULL)]
    resolved = [json.dumps({**c.to_dict(), "gap": pairs.get_spec(c.pair).default_gap if c.gap is None
                            else c.gap}, sort_keys=True) for c in configs]
    assert len(set(resolved)) == len(resolved)
    recorded = {c.gap for c in configs if c.pair == "digits-audio-recorded"}
    assert recorded == {None, 0.25, 0.5, 0.75, 1.0}  # gap 0 is its default: the `cmc` arm
    assert {c.gap for c in configs if c.pair == "digits-audio"} == {None, 0.0, 0.25, 0.5, 0.75, 1.0}


def test_resume_keeps_runs_of_the_current_data_version_only(tmp_path):
    calls = []

    def run(study: str, config: dict) -> dict:
        calls.append(config["seed"])
        return {"wall_s": 0.0, "accuracy": 0.5}

    kind = runner.RunKind(run, lambda todo, pool: None, lambda metrics: "done")
    planned = [("main", DistillConfig(pair="digits-depth", seed=seed)) for seed in (0, 1)]
    path, header = tmp_path / "x.json", {"benchmark": "x", "data_version": "2"}
    runner.execute(planned, path, header, kind=kind)
    runner.execute(planned, path, header, resume=True, kind=kind)
    assert calls == [0, 1]  # the second call resumed: nothing to do
    report = json.loads(path.read_text())
    path.write_text(json.dumps({**report, "data_version": "1"}))
    runner.execute(planned, path, header, resume=True, kind=kind)
    assert calls == [0, 1, 0, 1]  # runs on other data are done again
    assert json.loads(path.read_text())["data_version"] == "2"


def test_claim_size_compares_with_the_best_baseline_on_validation_never_on_test():
    runs = []
    for seed in range(5):
        noise = 0.01 * seed
        for method, test, validation in (("l2", 0.70, 0.60), ("crd", 0.74, 0.72), ("socket", 0.78, 0.70),
                                         ("cmc", 0.80, 0.0), ("cmd", 0.745, 0.0)):
            run = fake_run(method, test + noise + 0.001 * (seed % 2) * (method == "cmc"), seed)
            run["metrics"]["validation_accuracy"] = validation
            runs.append(run)
    rows = claim_size.claim_verdicts(runs, bench_paper.BASELINES, tuning=None)
    assert [(r["kind"], r["method"], r["baseline"]) for r in rows] == [("claim-size", "cmc", "crd"),
                                                                       ("claim-size", "cmd", "crd")]
    by_method = {r["method"]: r for r in rows}  # socket is better on test, crd on validation
    assert by_method["cmc"]["diff_mean"] == pytest.approx(0.0604)
    assert by_method["cmc"]["verdict"] == "at least"
    assert by_method["cmd"]["verdict"] == "less than"  # +0.5 points, exactly
    assert by_method["cmc"]["baseline_chosen_on"] == claim_size.FROM_RUNS
    assert "cmc gains at least 2 points on 1 of 1 pairs" in claim_size.sentence(rows)


def test_claim_size_falls_back_to_the_tuning_sweeps_validation_scores():
    runs = [fake_run(method, 0.7 + 0.01 * seed, seed) for seed in range(3) for method in ("cmc", "l2", "crd")]
    l2_rows = [{"settings": {}, "validation_accuracy": {"digits-sketch": 0.9}},  # not chosen
               {"settings": {"lr": 6e-3}, "validation_accuracy": {"digits-sketch": 0.8}}]
    crd_rows = [{"settings": {}, "validation_accuracy": {"digits-depth": 0.7, "fashion-sketch": 0.95}}]
    tuning = {"chosen": {"l2": {"lr": 6e-3}, "crd": {}}, "candidates": {"l2": l2_rows, "crd": crd_rows}}
    best = claim_size.best_baseline(runs, "digits-sketch", bench_paper.BASELINES, tuning)
    assert best == {"baseline": "crd", "validation_accuracy": 0.825, "chosen_on": claim_size.FROM_TUNING_MEAN}
    assert claim_size.best_baseline(runs, "digits-sketch", bench_paper.BASELINES, None) is None


def _curve(pair, method, multiplier, validation):
    return {"pair": pair, "method": method, "multiplier": multiplier, "validation": validation, "test": 0.0}


def test_budget_choice_is_the_smallest_budget_where_doubling_gains_the_best_method_under_a_point():
    rows, budgets = [], (0.25, 0.5, 1.0, 2.0, 4.0)
    for pair, values in (("a", {"cmc": (0.5, 0.7, 0.75, 0.755, 0.76), "crd": (0.6, 0.72, 0.74, 0.76, 0.8)}),
                         ("b", {"cmc": (0.60, 0.65, 0.655, 0.66, 0.66), "l2": (0.3, 0.4, 0.5, 0.6, 0.7)})):
        for method, curve in values.items():
            rows += [_curve(pair, method, m, v) for m, v in zip(budgets, curve, strict=True)]
    rows += [_curve("a", "supervised", m, 0.9 + m / 10) for m in budgets]  # not a distillation method
    # x0.5: a's best is crd (0.72 -> 0.74, +2 points): no. x1: a's best cmc (+0.5), b's cmc (+0.5): yes.
    choice = bench_budget.choose(rows)
    assert choice["multiplier"] == 1.0 and choice["converged"]
    assert choice["gains"] == {"a": {"best": "cmc", "gain": 0.005}, "b": {"best": "cmc", "gain": 0.005}}
    growing = [dict(row, validation=row["validation"] + row["multiplier"] / 10) for row in rows]
    never = bench_budget.choose(growing)
    assert never["multiplier"] == 4.0 and not never["converged"] and "largest" in never["reason"]


def _budget_report(validation: dict) -> dict:
    """A budget.json of two pairs x two methods x two multipliers x one seed, from
    {(pair, method, multiplier): validation accuracy}; pairs missing cells are unfinished."""
    runs = [{"study": f"x{m:g}", "config": {"pair": pair, "method": method, "steps": int(10 * m)},
             "metrics": {"validation_accuracy": value, "accuracy": value}}
            for (pair, method, m), value in validation.items()]
    settings = {"pairs": ["a", "b"], "methods": ["cmc", "l2"], "multipliers": [1.0, 2.0], "seeds": [0]}
    return {"runs": runs, "settings": settings, "command": "cmcd bench budget", "wall_s": 60.0,
            "device": "cpu", "quick": False}


def test_the_readme_shows_only_finished_pairs_of_an_unfinished_budget_study_and_its_choice_once_finished(
        tmp_path, readme_results):
    cells = {("a", "cmc", 1.0): 0.70, ("a", "cmc", 2.0): 0.65, ("a", "l2", 1.0): 0.60, ("a", "l2", 2.0): 0.75,
             ("b", "cmc", 1.0): 0.50}
    (tmp_path / "budget.json").write_text(json.dumps(_budget_report(cells)))
    unfinished = "\n".join(readme_results.budget_part())
    assert "**Unfinished: 5 of 8 runs**" in unfinished and "(a)" in unfinished
    assert "| b |" not in unfinished and "Chosen" not in unfinished
    assert "lowered mean validation accuracy in 1 of 2 (pair, method) cells and raised it in 1" in unfinished
    assert "a: x1 cmc, x2 l2" in unfinished
    cells.update({("b", "cmc", 2.0): 0.52, ("b", "l2", 1.0): 0.4, ("b", "l2", 2.0): 0.45})
    report = _budget_report(cells)
    report["choice"] = bench_budget.choose(bench_budget.curves(report["runs"]))
    (tmp_path / "budget.json").write_text(json.dumps(report))
    finished = "\n".join(readme_results.budget_part())
    assert "**Chosen on validation: x2**" in finished
    assert "| b | l2 | 0.400 / 0.400 | 0.450 / 0.450 |" in finished
    assert "Unfinished" not in finished
    assert "the paper tables above were made at x1 and stay until" in finished  # no paper.json: x1
    (tmp_path / "paper.json").write_text(json.dumps({"settings": {"budget": {"multiplier": 2.0}}}))
    assert "the paper tables above" not in "\n".join(readme_results.budget_part())


def test_a_resumed_budget_study_keeps_the_settings_it_began_with_though_tuning_ran_again(tmp_path):
    tuning = {"chosen": {"cmc": {"temperature": 0.5}}, "finetune": {"chosen": {"steps": 10, "lr": 1e-4}}}
    (tmp_path / "tuning.json").write_text(json.dumps(tuning))  # the sweep at the chosen budget
    assert bench_budget.tuned_settings(tmp_path, reuse_recorded=True) == {"cmc": {"temperature": 0.5}}
    began = {"quick": False, "settings": {"chosen": {"cmc": {"temperature": 0.2}}}, "runs": []}
    (tmp_path / "budget.json").write_text(json.dumps(began))
    assert bench_budget.tuned_settings(tmp_path, reuse_recorded=True) == {"cmc": {"temperature": 0.2}}
    assert bench_budget.tuned_settings(tmp_path, reuse_recorded=False) == {"cmc": {"temperature": 0.5}}
    (tmp_path / "budget.json").write_text(json.dumps({**began, "quick": True}))  # --quick: defaults
    assert bench_budget.tuned_settings(tmp_path, reuse_recorded=True) == {"cmc": {"temperature": 0.5}}


def test_the_readme_says_when_the_paper_tables_predate_the_tuning_sweep(readme_results):
    tuning = {"command": "cmcd bench tuning", "runs": [{}] * 3, "wall_s": 60, "device": "CPU",
              "data_version": readme_results.DATA_VERSION, "chosen": {"cmc": {"temperature": 0.1}},
              "candidates": {"cmc": [{}, {}]}, "finetune": {"chosen": {"steps": 20, "lr": 3e-5}},
              "settings": {"pairs": ["digits-depth"], "budget": {"multiplier": 2.0}}}
    same = {"settings": {"chosen": tuning["chosen"], "finetune": {"steps": 20, "lr": 3e-5}}}
    line = readme_results.tuning_line(tuning, same)
    assert "3 runs at x2 the benchmark's steps" in line and "earlier sweep" not in line
    older = {"settings": {"chosen": {"cmc": {"temperature": 0.2}}, "finetune": same["settings"]["finetune"]}}
    assert "made with an earlier sweep's settings" in readme_results.tuning_line(tuning, older)


def test_a_log_axis_is_labelled_at_the_budgets_measured():
    from cmcd.viz import figures

    panel = figures.Panel("pair", "x steps", "accuracy", x_log=True,
                          series=[figures.Series("cmc", [0.25, 1.0, 4.0], [0.1, 0.5, 0.4]),
                                  figures.Series("l2", [0.5, 1.0], [0.2, 0.3])])
    axis = figures.plotly_figure([panel], "budget").layout.xaxis
    assert axis.type == "log" and list(axis.tickvals) == [0.25, 0.5, 1.0, 4.0]
    assert list(axis.ticktext) == ["0.25", "0.5", "1", "4"]


def test_every_method_of_the_paper_benchmark_gets_its_own_colour():
    from cmcd.bench import paper
    from cmcd.viz import figures

    names = list(paper.FULL.methods)
    panel = figures.Panel("pair", "k", "accuracy", series=[figures.Series(n, [0.0], [0.5]) for n in names])
    colours = figures._colours([panel])
    assert len(names) >= 11 and len(set(colours.values())) == len(names)


def test_quick_budget_study_records_both_curves_and_the_paper_reads_a_full_studys_choice(tmp_path):
    out = tmp_path / "results"
    assert main(["bench", "budget", "--quick", "--out", str(out)]) == 0
    report = json.loads((out / "budget.json").read_text())
    plan = bench_budget.QUICK
    assert len(report["runs"]) == len(plan.methods) * len(plan.multipliers) * len(plan.seeds)
    steps = {(r["config"]["method"], r["study"]): r["config"]["steps"] for r in report["runs"]}
    assert steps[("cmc", "x0.5")] == 1 and steps[("cmc", "x2")] == 4
    assert all({"validation", "test", "n"} <= set(row) for row in report["curves"])
    assert report["choice"]["multiplier"] in plan.multipliers and report["choice"]["reason"]
    assert (out / "figures" / "budget-validation.png").read_bytes().startswith(PNG_MAGIC)
    assert bench_tuning.chosen_budget(out)[0] == 1.0  # a --quick study is never read
    unfinished = {key: value for key, value in report.items() if key not in ("choice", "curves")}
    (out / "budget.json").write_text(json.dumps({**unfinished, "quick": False}))
    budget, why = bench_tuning.chosen_budget(out)  # an interrupted study is never read either
    assert budget == 1.0 and why.endswith("an unfinished one)")
    report["quick"], report["choice"] = False, {"multiplier": 2.0, "reason": "made up"}
    (out / "budget.json").write_text(json.dumps(report))
    assert bench_tuning.chosen_budget(out) == (2.0, "x2 from budget.json: made up")
    doubled = dataclasses.replace(bench_paper.FULL, budget=2.0)
    config = bench_paper.run_config(doubled, "digits-depth", "cmc", "ssl", 0, {}, bench_paper.QUICK_FINETUNE)
    assert config.steps == 2 * runner.default_steps("digits-depth")


def test_a_resumed_benchmark_keeps_only_the_runs_of_its_plan():
    plan = dataclasses.replace(bench_paper.QUICK, budget=2.0)
    planned = bench_paper.planned_runs(plan, {}, bench_paper.QUICK_FINETUNE)
    study, config = planned[0]
    current = {"study": study, "config": {**config.to_dict(), "device": "cuda"}, "metrics": {}}
    old_budget = {"study": study, "config": {**config.to_dict(), "steps": config.steps // 2}, "metrics": {}}
    kept = runner.planned_only({"runs": [current, old_budget]}, planned)["runs"]
    assert kept == [current]


def test_progress_estimates_the_time_left_from_the_steps_left(tmp_path, monkeypatch, caplog):
    now = [-600.0]  # ten minutes of data preparation before the first run: not in the estimate
    monkeypatch.setattr(runner, "time", type("Clock", (), {"perf_counter": staticmethod(lambda: now[0])}))
    short, long = (DistillConfig(pair="digits-depth", steps=steps) for steps in (100, 300))
    record = runner._Recorder(tmp_path / "study.json", {"runs": []}, 0.0,
                              [("x1", short), ("x3", long), ("x3", long)], runner.DISTILLATION)
    now[0] = 0.0
    record.runs_begin()
    with caplog.at_level(logging.INFO, logger=runner.log.name):
        for minute, (study, config) in enumerate([("x1", short), ("x3", long)], start=1):
            now[0] = 60.0 * minute
            record(study, config, {"accuracy": 0.5, "wall_s": 60.0})
    # 100 steps a minute leaves 600 steps, 6 min; then 400 steps in 2 min leave 300 steps, 1.5 min
    assert "[1/3]" in caplog.messages[0] and "about 6 min left" in caplog.messages[0]
    assert "[2/3]" in caplog.messages[1] and "about 2 min left" in caplog.messages[1]
    assert record.report["wall_s"] == 720.0  # the benchmark's own wall time keeps the preparation
