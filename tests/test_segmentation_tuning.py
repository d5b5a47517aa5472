"""The segmentation tuning sweep (`cmcd bench segmentation-tuning`): the same sweep for every dense
loss, chosen on validation only, resumable; and `cmcd bench segmentation` running each method with
its chosen settings."""

import dataclasses
import json

import pytest
import torch

from cmcd import cli, paths
from cmcd.bench import runner as bench_runs
from cmcd.bench import segmentation as bench
from cmcd.bench import segmentation_tuning as tuning
from cmcd.modalities import masks
from cmcd.train import segment
from cmcd.train.config import SEGMENTATION_METHODS, SegmentConfig
from cmcd.train.dense_teacher import load_dense_teacher

QUICK_OVERRIDES = dict(tuning.QUICK.overrides)


@pytest.fixture(scope="module")
def seg():
    """digits-depth's masks and the tiny runs' ssl dense teacher, built once for the module."""
    data = masks.load_segmentation("digits-depth")
    load_dense_teacher(data, tuning.TEACHER, QUICK_OVERRIDES["head_steps"])
    return data


# --- the sweep -----------------------------------------------------------------------------------

def test_every_dense_loss_gets_the_same_number_of_distinct_configurations():
    runs = tuning.planned_runs(tuning.FULL)
    assert set(tuning.FULL.methods) == set(SEGMENTATION_METHODS)
    assert set(tuning.FULL.pairs) == set(masks.SEGMENTATION_PAIRS)
    per_method = {m: [c for _, c in runs if c.method == m] for m in SEGMENTATION_METHODS}
    counts = {m: len(configs) for m, configs in per_method.items()}
    assert set(counts.values()) == {tuning.CANDIDATE_COUNT * len(masks.SEGMENTATION_PAIRS)}, counts
    for configs in per_method.values():  # no configuration twice (a duplicate would be a free run)
        assert len({json.dumps(c.to_dict(), sort_keys=True) for c in configs}) == len(configs)
    assert {(c.teacher, c.seed) for _, c in runs} == {("ssl", 1000)}  # never a benchmark seed
    # the shared knobs' candidates are the same for every method, over the asked-for grid
    shared = {m: {(c.lr, c.steps) for c in configs if c.loss == type(c.loss)()}
              for m, configs in per_method.items()}
    assert shared["cmc"] == shared["cmd"] <= shared["l2"]
    assert {lr for lr, steps in shared["cmc"]} == {0.003, 0.006, 0.012, 0.02}
    assert {steps for lr, steps in shared["cmc"]} == {200, 300, 400}


def test_a_loss_with_options_but_no_configurations_of_them_is_refused(monkeypatch):
    monkeypatch.setattr(tuning, "OWN", {"cmc": tuning.OWN["cmc"]})
    with pytest.raises(KeyError, match="dense-cmd"):
        tuning.candidates("cmd")
    assert len(tuning.candidates("l2")) == tuning.CANDIDATE_COUNT  # no options: more shared knobs


def _run(plan, study, pair, method, settings, val_fg, test_fg=0.0, val_miou=0.0, schedules=None):
    metrics = {"validation": {"miou_foreground": val_fg, "miou": val_miou, "pixel_acc": 0.9},
               "test": {"miou_foreground": test_fg}, "train_s": 1.0}
    if schedules is not None:
        metrics["few_label_val"] = schedules
    return {"study": study, "config": tuning.config_of(plan, pair, method, settings).to_dict(),
            "metrics": metrics}


def test_the_choice_reads_validation_foreground_miou_only_averaged_over_the_pairs():
    plan = tuning.Plan(pairs=masks.SEGMENTATION_PAIRS, methods=("cmc",), candidates=4,
                       schedules=((1e-3, 10), (3e-3, 20)))
    centre, cold, hot, wide = tuning.candidates("cmc", 4)
    # (validation foreground mIoU per pair, test foreground mIoU, validation plain mIoU)
    scores = {json.dumps(centre): ((0.50, 0.50), 0.90, 0.90),  # best on test and on plain mIoU
              json.dumps(cold): ((0.62, 0.50), 0.10, 0.10),  # best on validation foreground mIoU
              json.dumps(hot): ((0.70, 0.30), 0.10, 0.10),  # best on one pair only
              json.dumps(wide): ((0.56, 0.56), 0.10, 0.10)}  # the same mean as cold, later
    runs = [_run(plan, "sweep", pair, "cmc", settings, fg[i], test, plain)
            for settings in (centre, cold, hot, wide)
            for i, pair in enumerate(plan.pairs)
            for fg, test, plain in [scores[json.dumps(settings)]]]
    schedules = {"10@0.001": {"miou": {"1": 0.9}, "miou_foreground": {"1": 0.2}},
                 "20@0.003": {"miou": {"1": 0.1}, "miou_foreground": {"1": 0.4}}}
    runs += [_run(plan, "finetune", pair, "cmc", cold, 0.0, schedules=schedules) for pair in plan.pairs]
    report = tuning.summarise({"runs": runs}, plan)
    assert report["chosen"]["cmc"] == {**cold, "fine_tune_lr": 3e-3, "fine_tune_steps": 20}
    assert [row["mean"] for row in report["ranking"]["cmc"]] == [0.5, 0.56, 0.5, 0.56]
    assert len(report["candidates"]) == 8
    assert {"method", "pair", "settings", "val_miou_foreground", "val_miou", "train_s"} \
        <= set(report["candidates"][0])


def test_a_configuration_missing_a_pair_is_not_chosen():
    plan = tuning.Plan(pairs=masks.SEGMENTATION_PAIRS, methods=("l2",), candidates=2, schedules=())
    centre, other = tuning.candidates("l2", 2)
    runs = [_run(plan, "sweep", pair, "l2", centre, 0.4) for pair in plan.pairs]
    runs.append(_run(plan, "sweep", plan.pairs[0], "l2", other, 0.9))  # its other pair failed
    assert tuning.choose(tuning.ranking({"runs": runs}, plan, "l2")) == centre


def test_quick_tuning_trains_scores_on_validation_only_and_writes_a_choice(seg, tmp_path, capsys,
                                                                           monkeypatch):
    """The CLI end to end on tiny runs (one method, to stay short); every mask it predicts, in the
    sweep and in the few-label schedules, is of a validation item, none of a test item."""
    seen = []
    real = segment.predict_masks

    def spy(student, head, inputs):
        seen.append(inputs)
        return real(student, head, inputs)

    monkeypatch.setattr(segment, "predict_masks", spy)
    monkeypatch.setattr(tuning, "QUICK", dataclasses.replace(tuning.QUICK, methods=("l2",),
                                                             schedules=tuning.QUICK.schedules[:1]))
    assert cli.main(["bench", "segmentation-tuning", "--quick", "--out", str(tmp_path), "--json"]) == 0
    assert seen and all(torch.equal(inputs, seg.data.val.target) for inputs in seen)
    assert not any(torch.equal(inputs, seg.data.test.target) for inputs in seen)
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "segmentation-tuning.json").read_text())
    assert saved["quick"] and saved["command"] == f"cmcd bench segmentation-tuning --quick --out {tmp_path}"
    assert [run["study"] for run in saved["runs"]].count("sweep") == 2
    finetune = [run["metrics"] for run in saved["runs"] if run["study"] == "finetune"]
    assert len(finetune) == 1 and set(finetune[0]["few_label_val"]["1@0.001"]["miou_foreground"]) == \
        {"1", "5", "10"}
    assert len(saved["candidates"]) == 2 and printed["chosen"] == saved["chosen"]
    assert 0 <= saved["candidates"][0]["val_miou_foreground"] <= 1
    assert {"lr", "steps", "fine_tune_lr", "fine_tune_steps"} <= set(saved["chosen"]["l2"])
    with pytest.raises(ValueError, match="--quick"):  # a quick file is never read as a choice
        tuning.chosen_settings(tmp_path)


def _fake_job(calls):
    def job(study, config, schedules=()):
        calls.append((study, config["method"], config["lr"]))
        return {"validation": {"miou_foreground": config["lr"], "miou": 0.5, "pixel_acc": 0.9},
                "train_s": 0.1, "wall_s": 0.1,
                "few_label_val": {tuning.schedule_key(lr, steps): {"miou": {"1": 0.5},
                                                                   "miou_foreground": {"1": lr}}
                                  for lr, steps in schedules}}
    return job


def test_resume_keeps_finished_runs_and_trains_only_the_rest(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(tuning, "validation_job", _fake_job(calls))
    monkeypatch.setattr(bench_runs, "prepare_segmentation", lambda planned, pool=None: None)
    first = tuning.run(out=str(tmp_path), quick=True)
    assert len(calls) == 6 and len(first["runs"]) == 6
    path = tmp_path / "segmentation-tuning.json"
    saved = json.loads(path.read_text())
    dropped = saved["runs"].pop(0)  # as if interrupted before that run finished
    path.write_text(json.dumps(saved))
    calls.clear()
    again = tuning.run(out=str(tmp_path), quick=True, resume=True)
    assert calls == [(dropped["study"], dropped["config"]["method"], dropped["config"]["lr"])]
    assert sorted(json.dumps(r, sort_keys=True) for r in again["runs"]) == \
        sorted(json.dumps(r, sort_keys=True) for r in first["runs"])
    calls.clear()
    tuning.run(out=str(tmp_path), quick=True)  # without --resume: everything again
    assert len(calls) == 6


# --- `cmcd bench segmentation` reads the choice ----------------------------------------------------

def _fake_segment_metrics(study, config):
    value = 0.5 + 0.01 * config["seed"] + (0.05 if config["method"] == "cmc" else 0.0)
    return {"miou_zero_label": value, "miou_foreground_zero_label": value, "pixel_acc": 0.9,
            "miou_few_label": {"1": value, "5": value, "10": value}, "teacher_miou": 0.6,
            "teacher_pixel_acc": 0.9, "wall_s": 0.1}


@pytest.fixture
def fake_segmentation_runs(monkeypatch):
    monkeypatch.setattr(bench, "SEGMENTATION", bench_runs.RunKind(
        _fake_segment_metrics, lambda planned, pool=None: None, lambda metrics: "fake"))


def test_bench_segmentation_runs_each_method_with_its_chosen_settings(tmp_path, fake_segmentation_runs):
    chosen = {"cmc": {"lr": 0.006, "steps": 400, "temperature": 0.1, "fine_tune_lr": 3e-3,
                      "fine_tune_steps": 10}}
    (tmp_path / "segmentation-tuning.json").write_text(json.dumps(
        {"quick": False, "data_version": paths.DATA_VERSION, "chosen": chosen}))
    report = bench.run(out=str(tmp_path), seeds=2)
    saved = json.loads((tmp_path / "segmentation.json").read_text())
    defaults = SegmentConfig()
    for run in saved["runs"]:
        config = run["config"]
        if config["method"] == "cmc":
            assert (config["lr"], config["steps"], config["loss"]["temperature"]) == (0.006, 400, 0.1)
            assert (config["fine_tune_lr"], config["fine_tune_steps"]) == (3e-3, 10)
        else:
            assert (config["lr"], config["steps"]) == (defaults.lr, defaults.steps)
    assert {run["config"]["teacher"] for run in saved["runs"]} == {"ssl", "ft"}  # the ablation too
    assert saved["settings"]["tuning"]["chosen"] == chosen
    assert "segmentation-tuning" in saved["settings"]["tuning"]["source"]
    assert saved["settings"]["methods"]["cmc"]["lr"] == 0.006
    assert saved["settings"]["methods"]["l2"]["lr"] == defaults.lr
    assert "cmc lr 0.006, 400 steps, temperature 0.1" in bench.settings_note(report)


def test_bench_segmentation_without_a_tuning_file_uses_and_records_the_defaults(tmp_path,
                                                                               fake_segmentation_runs):
    bench.run(out=str(tmp_path), seeds=2)
    saved = json.loads((tmp_path / "segmentation.json").read_text())
    assert saved["settings"]["tuning"]["chosen"] == {}
    assert "defaults" in saved["settings"]["tuning"]["source"]
    assert {run["config"]["lr"] for run in saved["runs"]} == {SegmentConfig().lr}
    (tmp_path / "segmentation-tuning.json").write_text(json.dumps({"quick": True, "chosen": {}}))
    with pytest.raises(ValueError, match="--quick"):
        bench.run(out=str(tmp_path), seeds=2)
    quick = bench.run(out=str(tmp_path), quick=True)  # --quick never reads it
    assert "--quick" in quick["settings"]["tuning"]["source"]
