"""README promises that no other test exercised: `cmcd data`, `cmcd pretrain`, `cmcd bench
data|speed|inputs`, the benchmarks' `--workers N`, `--resume` and `--report-only` beyond `paper`,
`classify --task segmentation` as text, `--registered`, 8-bit depth PNGs and
`ship_students.py --calibrate-only`. Each kept tiny: it checks that the promise holds, not the
numbers."""

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cmcd import cli, paths
from cmcd.modalities import pairs

ROOT = Path(__file__).resolve().parent.parent


def _json_out(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


# --- cmcd data and cmcd pretrain -------------------------------------------------------------------

def test_cmcd_data_builds_a_pair_reports_its_sizes_and_writes_its_contact_sheet(tmp_path, capsys):
    assert cli.main(["data", "--pair", "digits-depth", "--json", "--sheet-dir", str(tmp_path)]) == 0
    entry = _json_out(capsys)["pairs"]["digits-depth"]
    assert entry["sizes"] == pairs.load_pair("digits-depth").sizes()
    assert entry["contact_sheet"] == str(tmp_path / "digits-depth.png")
    with Image.open(entry["contact_sheet"]) as sheet:
        assert sheet.width > 100 and sheet.height > 100
    assert cli.main(["data", "--pair", "digits-depth"]) == 0
    assert capsys.readouterr().out.startswith("digits-depth: {'sizes': ")


def test_cmcd_pretrain_trains_both_teachers_with_the_given_settings_into_out(tmp_path, monkeypatch, capsys):
    from cmcd.models.teacher import load_teacher
    from cmcd.train import pretrain

    # 256 photos, not the whole dataset: the command's wiring is what is checked here
    monkeypatch.setattr(pretrain, "PretrainConfig",
                        functools.partial(pretrain.PretrainConfig, max_items=256, head_epochs=5))
    assert cli.main(["pretrain", "--dataset", "digits", "--epochs", "1", "--ft-epochs", "1",
                     "--batch-size", "64", "--width", "8", "--seed", "3", "--device", "cpu",
                     "--out", str(tmp_path), "--json"]) == 0
    results = _json_out(capsys)
    assert set(results) == {"ssl", "ft"}
    for variant in ("ssl", "ft"):
        config = results[variant]["config"]
        assert (config["ssl_epochs"], config["ft_epochs"], config["width"], config["seed"]) == (1, 1, 8, 3)
        teacher = load_teacher("digits", variant, root=tmp_path)
        assert teacher.metadata["source_test_acc"] == results[variant]["source_test_acc"]


def test_cmcd_pretrain_ft_only_fine_tunes_the_saved_ssl_teacher_and_leaves_it_alone(tmp_path, monkeypatch,
                                                                                    capsys):
    from cmcd.models.teacher import load_teacher
    from cmcd.train import pretrain

    monkeypatch.setattr(pretrain, "PretrainConfig",
                        functools.partial(pretrain.PretrainConfig, max_items=256, head_epochs=5))
    common = ["--dataset", "digits", "--batch-size", "64", "--width", "8", "--device", "cpu",
              "--out", str(tmp_path), "--json"]
    assert cli.main(["pretrain", "--epochs", "1", "--ft-epochs", "1", *common]) == 0
    capsys.readouterr()
    ssl_files = {path.name: path.read_bytes() for path in tmp_path.glob("teacher-digits-ssl.*")}
    first_ft = load_teacher("digits", "ft", root=tmp_path)

    assert cli.main(["pretrain", "--ft-only", "--ft-epochs", "2", *common]) == 0
    results = _json_out(capsys)
    assert set(results) == {"ft"}
    assert {path.name: path.read_bytes() for path in tmp_path.glob("teacher-digits-ssl.*")} == ssl_files
    ft = load_teacher("digits", "ft", root=tmp_path)
    assert ft.metadata["config"]["ft_epochs"] == 2 and ft.metadata["train_items"] == 256
    assert ft.metadata["ssl_teacher"]["config"]["ssl_epochs"] == 1
    assert not _same_weights(ft.encoder, first_ft.encoder)

    # with no epochs of fine-tuning the ft teacher is the saved ssl teacher itself: it starts there
    assert cli.main(["pretrain", "--ft-only", "--ft-epochs", "0", *common]) == 0
    untouched = load_teacher("digits", "ft", root=tmp_path)
    ssl = load_teacher("digits", "ssl", root=tmp_path)
    assert _same_weights(untouched.encoder, ssl.encoder) and _same_weights(untouched.head, ssl.head)


def _same_weights(one: torch.nn.Module, other: torch.nn.Module) -> bool:
    return all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), other.state_dict().values(),
                                                 strict=True))


def test_cmcd_pretrain_ft_only_needs_a_saved_ssl_teacher(tmp_path, capsys):
    assert cli.main(["pretrain", "--ft-only", "--dataset", "digits", "--device", "cpu",
                     "--out", str(tmp_path)]) != 0
    assert "teacher-digits-ssl" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())

# --- cmcd bench data, speed, inputs ---------------------------------------------------------------

def test_bench_data_times_a_cold_build_and_a_warm_load_in_a_new_process(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pairs, "PAIRS", {"digits-depth": pairs.PAIRS["digits-depth"]})
    monkeypatch.setenv("CMCD_CACHE", str(paths.cache_dir().parent))  # the benchmark moves it
    assert cli.main(["bench", "data", "--cache", str(tmp_path), "--json"]) == 0
    report = _json_out(capsys)
    assert report["cache"] == str(tmp_path) and list(report["cold_build_s"]) == ["digits-depth"]
    assert report["cold_build_s"]["digits-depth"]["sizes"] == pairs.load_pair("digits-depth").sizes()
    assert report["cold_build_s"]["digits-depth"]["seconds"] > report["warm_load_s"]["digits-depth"] > 0
    assert list((tmp_path / f"data-v{paths.DATA_VERSION}").iterdir())  # built there, not elsewhere


def test_bench_speed_reports_distillation_against_pure_training_throughput(monkeypatch, capsys):
    from cmcd.bench import speed
    from cmcd.train.config import DistillConfig

    monkeypatch.setattr(speed, "DistillConfig",
                        functools.partial(DistillConfig, epochs=1, n_pairs=512, width=8))
    monkeypatch.setattr(speed, "cli_wall_seconds", lambda pair, device: 12.5)  # a default run: minutes
    assert cli.main(["bench", "speed", "--device", "cpu", "--json"]) == 0
    report = _json_out(capsys)
    assert report["pair"] == "digits-sketch" and report["device"] == "cpu"
    assert report["distill_pairs_per_s"] > 0 and report["pure_train_samples_per_s"] > 0
    ratio = report["distill_pairs_per_s"] / report["pure_train_samples_per_s"]
    assert report["ratio"] == pytest.approx(ratio, abs=1e-3)
    assert report["cli_distill_wall_s"] == 12.5
    assert cli.main(["bench", "speed", "--device", "cpu"]) == 0
    assert "pairs/s" in capsys.readouterr().out


def test_bench_inputs_writes_what_the_app_and_readme_read(tmp_path, monkeypatch, capsys):
    from cmcd.app import tryit
    from cmcd.bench import inputs

    monkeypatch.setattr(inputs, "has_shipped_student", lambda pair: pair == "digits-sketch")
    for name, small in (("JUNK_PER_KIND", 2), ("TEST_FILES", 20), ("STYLE_ITEMS", 10)):
        monkeypatch.setattr(inputs, name, small)
    assert cli.main(["bench", "inputs", "--out", str(tmp_path), "--json"]) == 0
    report = json.loads((tmp_path / "inputs.json").read_text())
    assert report == {k: v for k, v in _json_out(capsys).items() if k in report}
    entry = report["pairs"]["digits-sketch"]
    synthetic = entry["synthetic_test"]
    assert synthetic["as_files"]["n"] == 20 and synthetic["rendered"]["accuracy"] > 0.8
    assert entry["examples"]["correct"] == entry["examples"]["n"] > 0  # the shipped examples read right
    assert len(entry["drawn_styles"]) >= 5 and all(row["n"] == 10 for row in entry["drawn_styles"].values())
    assert all(row["n"] == 2 for row in entry["junk"].values()) and 0 <= entry["junk_caught"] <= 1
    monkeypatch.setenv("CMCD_RESULTS", str(tmp_path))
    assert "`digits-sketch`: synthetic test" in tryit.real_inputs_summary()


# --- segmentation from the command line -----------------------------------------------------------

TINY = {"steps": 2, "n_pairs": 32, "head_steps": 2, "fine_tune_steps": 1, "few_label_draws": 1}


def test_classify_segmentation_prints_one_line_per_file_and_registered_pairs_reach_the_run(tmp_path, capsys):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    run = tmp_path / "run"
    assert cli.main(["distill", "--task", "segmentation", "--registered", *flags, "--out", str(run),
                     "--json"]) == 0
    assert _json_out(capsys)["registered"] is True
    assert json.loads((run / "config.json").read_text())["registered"] is True
    assert cli.main(["distill", "--task", "segmentation", *flags, "--out", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    losses = [json.loads((folder / "history.json").read_text())["steps"][0]["loss"]
              for folder in (run, tmp_path / "plain")]
    assert losses[0] != losses[1]  # the registered photos' teacher maps are other targets
    examples = [paths.examples_dir() / f"digits-depth__{digit}__test3147.npy" for digit in (3,)]
    examples += sorted(paths.examples_dir().glob("digits-depth__7__*.npy"))[:1]
    assert cli.main(["classify", "--task", "segmentation", "--pair", "digits-depth",
                     *map(str, examples)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for path, line in zip(examples, lines, strict=True):
        assert line.startswith(f"{path}: ") and "(pixels: background " in line


# --- depth maps as 8-bit PNGs ---------------------------------------------------------------------

def test_an_8_bit_depth_png_reads_like_the_same_map_as_16_bit(tmp_path):
    from cmcd.modalities import get_modality

    depth = np.full((64, 80), 200, dtype=np.uint8)
    depth[20:40, 30:50] = 120  # a box nearer than the wall
    depth[:5, :5] = 0  # no reading
    Image.fromarray(depth).save(tmp_path / "eight.png")
    Image.fromarray(depth.astype(np.uint16) * 250).save(tmp_path / "sixteen.png")
    assert Image.open(tmp_path / "eight.png").mode == "L"
    read = get_modality("depth").read_file
    eight, sixteen = read(tmp_path / "eight.png"), read(tmp_path / "sixteen.png")
    assert eight.shape == (1, 32, 32) and torch.allclose(eight, sixteen, atol=1e-4)
    assert eight[0, 0, 0] == 0 and eight[0, 15, 16] < eight[0, 30, 5]


# --- ship_students.py --calibrate-only -----------------------------------------------------------

def test_calibrate_only_refits_the_calibration_and_leaves_the_weights_alone(tmp_path):
    shipped = paths.shipped("checkpoints")
    for path in [*shipped.glob("teacher-digits-*"), *shipped.glob("student-digits-depth.*")]:
        shutil.copy(path, tmp_path / path.name)
    metadata_path = tmp_path / "student-digits-depth.json"
    metadata = json.loads(metadata_path.read_text())
    shipped_calibration = metadata.pop("calibration")
    metadata_path.write_text(json.dumps(metadata))
    weights = (tmp_path / "student-digits-depth.safetensors").read_bytes()
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "ship_students.py"), "--calibrate-only",
                             "--pairs", "digits-depth"], capture_output=True, text=True, cwd=ROOT,
                            env={**__import__("os").environ, "CMCD_CHECKPOINTS": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)["digits-depth"]
    refitted = json.loads(metadata_path.read_text())
    assert (tmp_path / "student-digits-depth.safetensors").read_bytes() == weights
    assert {k: refitted[k] for k in metadata} == metadata  # the rest of the metadata kept
    assert refitted["calibration"]["score"] == printed["score"] == shipped_calibration["score"]
    assert refitted["calibration"]["temperature"] == pytest.approx(shipped_calibration["temperature"],
                                                                   rel=1e-3)
