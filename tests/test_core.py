"""Teachers, distillation, the CLI contract of distill and classify, and input handling."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from cmcd.data import inputs
from cmcd.modalities import get_modality
from cmcd.models.checkpoints import load_student
from cmcd.models.teacher import load_teacher
from cmcd.train.config import DistillConfig
from cmcd.train.distill import distill
from cmcd.train.pretrain import PretrainConfig, nt_xent, pretrain
from cmcd.train.run_files import load_run, run_record, save_run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "cmcd" / "shipped" / "examples"

CONTRACT_KEYS = {"pair", "method", "teacher", "seed", "device", "epochs", "n_pairs", "wall_s",
                 "train_s", "pairs_per_s", "zero_label_acc", "few_label_acc", "retrieval",
                 "tv_distance"}


def _cmcd(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cmcd", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env)


# --- teachers ------------------------------------------------------------------------------------

def test_nt_xent_is_low_for_identical_views_and_log_n_for_random():
    z = torch.nn.functional.normalize(torch.randn(64, 32), dim=1)
    assert nt_xent(z, z, temperature=0.05) < 0.05
    random_loss = nt_xent(torch.randn(256, 64), torch.randn(256, 64), temperature=10.0)
    assert abs(random_loss.item() - np.log(2 * 256 - 1)) < 0.05


def test_pretrain_saves_both_teachers_and_they_round_trip(tmp_path):
    config = PretrainConfig(dataset="digits", ssl_epochs=2, ft_epochs=1, head_epochs=20,
                            batch_size=64, width=8, max_items=256, device="cpu", out=str(tmp_path))
    messages = []
    results = pretrain(config, report=messages.append)
    assert set(results) == {"ssl", "ft"}
    epochs = [m for m in messages if m.startswith("simclr epoch")]
    assert [m.split(":")[0] for m in epochs] == ["simclr epoch 1/2", "simclr epoch 2/2"]
    last_epoch_loss = float(epochs[-1].rsplit(" ", 1)[1])  # each epoch's mean loss, reported
    for variant in ("ssl", "ft"):
        meta = json.loads((tmp_path / f"teacher-digits-{variant}.json").read_text())
        assert meta["variant"] == variant and meta["train_items"] == 256
        assert abs(meta["simclr_final_loss"] - last_epoch_loss) <= 5e-4
        assert 0.0 <= meta["source_test_acc"] <= 1.0
        teacher = load_teacher("digits", variant, root=tmp_path)
        assert teacher.metadata["source_test_acc"] == meta["source_test_acc"]
        assert not any(p.requires_grad for p in teacher.encoder.parameters())
        photos = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
        embeddings = teacher.embed(photos)
        assert embeddings.shape == (5, 128)
        assert torch.allclose(embeddings.norm(dim=1), torch.ones(5), atol=1e-5)


def test_shipped_teachers_meet_their_source_accuracy_targets():
    assert load_teacher("digits", "ft").metadata["source_test_acc"] >= 0.97
    assert load_teacher("digits", "ssl").metadata["source_test_acc"] > 0.5
    assert load_teacher("fashion", "ft").metadata["source_test_acc"] >= 0.85


# --- distillation --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_runs():
    """A short CMC run and the untrained reference, same budget and seed."""
    common = dict(pair="digits-sketch", epochs=3, n_pairs=4096, batch_size=128, width=16,
                  device="cpu")
    events = []
    trained = distill(DistillConfig(method="cmc", **common), progress=events.append)
    untrained = distill(DistillConfig(method="random", **common))
    return trained, untrained, events


def test_distillation_beats_the_random_student(small_runs):
    trained, untrained, _ = small_runs
    assert trained.metrics["zero_label_acc"]["head"] > untrained.metrics["zero_label_acc"]["head"] + 0.3
    assert trained.metrics["retrieval"]["target_to_source"]["r10"] > \
        untrained.metrics["retrieval"]["target_to_source"]["r10"]
    assert trained.metrics["few_label_acc"]["10"] > untrained.metrics["few_label_acc"]["10"]


def test_distill_reports_progress_and_history(small_runs):
    trained, _, events = small_runs
    steps = [e for e in events if e["kind"] == "step"]
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert len(epochs) == 3 and steps[-1]["step"] == steps[-1]["total_steps"] == 3 * (4096 // 128)
    assert trained.history[-1]["loss"] < trained.history[0]["loss"]
    assert CONTRACT_KEYS <= set(trained.metrics)


def test_cancel_stops_early_and_still_evaluates():
    calls = []
    run = distill(DistillConfig(pair="digits-sketch", epochs=3, n_pairs=1024, batch_size=128,
                                width=8, device="cpu"),
                  should_stop=lambda: calls.append(1) or len(calls) >= 3)
    assert run.cancelled and len(calls) == 3
    assert "zero_label_acc" in run.metrics


def test_saved_run_round_trips(small_runs, tmp_path):
    trained, _, _ = small_runs
    out = save_run(trained, tmp_path / "run")
    for name in ("config.json", "metrics.json", "history.json", "student.safetensors",
                 "student.json", "embeddings.npz"):
        assert (out / name).exists()
    student, meta = load_student(out / "student")
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(student(x), trained.student.eval()(x), atol=1e-5)
    with np.load(out / "embeddings.npz") as saved:
        assert saved["student"].shape == (1300, 128)  # the digits test split
    assert meta["method"] == "cmc"
    assert load_run(out) == run_record(trained)
    sketch = tmp_path / "seven.png"
    _draw_seven().save(sketch)
    result = _cmcd("classify", "--pair", "digits-sketch", "--run", str(out), str(sketch), "--json")
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"label", "probs", "confidence", "unsure", "closest"}


def test_unknown_method_is_a_clear_error():
    result = _cmcd("distill", "--pair", "digits-sketch", "--method", "telepathy")
    assert result.returncode == 2 and "invalid choice: 'telepathy'" in result.stderr


def test_cli_distill_json_matches_the_contract(tmp_path):
    result = _cmcd("distill", "--pair", "digits-depth", "--method", "l2", "--epochs", "1",
                   "--n-pairs", "512", "--width", "8", "--device", "cpu", "--json",
                   "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert CONTRACT_KEYS <= set(metrics)
    assert metrics["pair"] == "digits-depth" and metrics["n_pairs"] == 512
    assert set(metrics["zero_label_acc"]) == {"head", "prototype"}
    assert set(metrics["few_label_acc"]) == {"1", "5", "10"}
    for direction in ("target_to_source", "source_to_target"):
        assert set(metrics["retrieval"][direction]) == {"r1", "r5", "r10", "map"}
    assert (tmp_path / "run" / "student.safetensors").exists()
    calibration = json.loads((tmp_path / "run" / "student.json").read_text())["calibration"]
    assert calibration["temperature"] > 0 and calibration["score"] in ("max_softmax", "energy",
                                                                       "prototype", "detector")


# --- inputs --------------------------------------------------------------------------------------

def _draw_seven(size=300, ink=0, paper=255):
    image = Image.new("L", (size, size), paper)
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    corners = [(0.2, 0.2), (0.8, 0.2), (0.4, 0.87)]
    draw.line([(x * size, y * size) for x, y in corners], fill=ink, width=size // 20)
    return image


def test_sketch_input_is_normalised_whatever_the_polarity_and_size(tmp_path):
    dark_on_light, light_on_dark = tmp_path / "a.png", tmp_path / "b.jpg"
    _draw_seven().save(dark_on_light)
    _draw_seven(size=120, ink=255, paper=0).save(light_on_dark)
    a, b = get_modality("sketch").read_file(dark_on_light), get_modality("sketch").read_file(light_on_dark)
    for x in (a, b):
        assert x.shape == (1, 32, 32)
        assert x[0, 0, 0] > 0.9 and x.min() < 0.3  # white paper, dark ink
    assert (a - b).abs().mean() < 0.08  # same drawing, same input


def test_depth_input_from_16_bit_png_and_npy(tmp_path):
    depth = np.full((64, 80), 900, dtype=np.uint16)
    depth[20:40, 30:50] = 700
    depth[:5, :5] = 0
    Image.fromarray(depth).save(tmp_path / "d.png")
    np.save(tmp_path / "d.npy", depth.astype(np.float32) / 1000)
    depth_modality = get_modality("depth")
    from_png = depth_modality.read_file(tmp_path / "d.png")
    from_npy = depth_modality.read_file(tmp_path / "d.npy")
    assert from_png.shape == from_npy.shape == (1, 32, 32)
    assert torch.allclose(from_png, from_npy, atol=1e-4)
    assert from_png[0, 0, 0] == 0  # a missing reading stays missing
    assert from_png[0, 15, 16] < from_png[0, 30, 5]  # the near box is nearer than the wall


@pytest.mark.parametrize("modality, name, content", [
    ("sketch", "empty.png", b""),
    ("sketch", "text.png", b"this is not an image"),
    ("depth", "bad.npy", b"\x93NUMPY garbage"),
    ("audio", "text.wav", b"RIFF but not really a wave file"),
])
def test_bad_files_give_a_one_line_reason(tmp_path, modality, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(inputs.InputError) as error:
        get_modality(modality).read_file(path)
    assert "\n" not in str(error.value) and name in str(error.value)


def test_blank_sketch_and_too_long_audio_are_refused(tmp_path):
    Image.new("L", (64, 64), 255).save(tmp_path / "blank.png")
    with pytest.raises(inputs.InputError, match="blank"):
        get_modality("sketch").read_file(tmp_path / "blank.png")
    soundfile.write(tmp_path / "long.wav", 0.1 * np.random.randn(16000 * 12), 16000)
    with pytest.raises(inputs.InputError):
        get_modality("audio").read_file(tmp_path / "long.wav")


# --- classify ------------------------------------------------------------------------------------

def _examples():
    return sorted(p for p in EXAMPLES.glob("*") if p.suffix in (".png", ".npy", ".wav", ".flac", ".ogg"))


def _expected(path: Path) -> tuple[str, str]:
    """assets/examples/PAIR__LABEL__anything.ext -> (pair, label)."""
    pair, label, _ = path.name.split("__", 2)
    return pair, label


def test_classify_examples_in_assets_return_their_labels():
    """Every shipped example is read right and sure of: scripts/make_examples.py picks, for each
    class, the first test item its pair's shipped student reads so (the page shows them as what
    the students do)."""
    by_pair = {}
    for path in _examples():
        by_pair.setdefault(_expected(path)[0], []).append(path)
    assert set(by_pair) == {"digits-sketch", "digits-depth", "digits-audio", "fashion-sketch",
                            "fashion-depth"}
    for pair, files in by_pair.items():  # a missing student fails here, never skips
        result = _cmcd("classify", "--pair", pair, *map(str, files), "--json")
        assert result.returncode == 0, result.stderr
        entries = json.loads(result.stdout)["results"] if len(files) > 1 else [json.loads(result.stdout)]
        for path, entry in zip(files, entries, strict=True):
            assert entry["label"].replace("/", "-") == _expected(path)[1], (path.name, entry)
            assert not entry["unsure"], (path.name, entry)
            assert abs(sum(entry["probs"].values()) - 1) < 1e-3


def test_classify_bad_file_exits_non_zero_with_one_line(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    result = _cmcd("classify", "--pair", "digits-sketch", str(bad), "--json")
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
