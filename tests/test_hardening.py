"""Bad input of every kind gets one sentence, never a traceback, a hang or a silent wrong answer:
huge drawings and images, bad seeds, invalid audio and flat depth maps, damaged cache files and
run folders."""

import json
import math
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image
from safetensors.torch import save_file

from cmcd import paths
from cmcd.data import cache, inputs, sources
from cmcd.data.inputs import InputError
from cmcd.modalities import build_encoder, get_modality, pairs
from cmcd.models.checkpoints import load_student, save_student

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "cmcd" / "shipped" / "examples"


def _cmcd(*args):
    return subprocess.run([sys.executable, "-m", "cmcd", *args], capture_output=True, text=True,
                          cwd=ROOT)


def _one_sentence_naming(message: str, name: str) -> bool:
    return "\n" not in message and message.count(name) == 1


# --- 1. the sketch pad ---------------------------------------------------------------------------

def test_a_huge_sketch_pad_canvas_is_refused_before_it_is_converted():
    from cmcd.app import tryit

    huge = np.zeros((4097, 8, 4), dtype=np.uint8)  # small in memory, too tall
    with pytest.raises(InputError, match="4096 pixels a side"):
        tryit.drawing_to_grey(huge)


@pytest.mark.parametrize("value", ["drawing.svg", np.array([["a", "b"]]),
                                   np.zeros((10, 10, 2), np.uint8), np.zeros((0, 0))])
def test_what_the_sketch_pad_cannot_decode_is_a_one_sentence_error(value):
    from cmcd.app import tryit

    with pytest.raises(InputError, match="not a picture") as error:
        tryit.drawing_to_grey(value)
    assert "\n" not in str(error.value)


# --- 2. decompression bombs ----------------------------------------------------------------------

def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG file whose header says width x height (the pixel data is a stub): what a
    decompression bomb looks like to a reader that trusts the header."""
    Image.new("1", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IHDR")
    data[start + 4: start + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[start: start + 17]))
    data[start + 17: start + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("side", [5000, 10000, 20000])  # under, over and far over PIL's own limit
def test_oversized_images_are_refused_from_their_header(tmp_path, side, recwarn):
    image = _png_claiming(tmp_path / "bomb.png", side, side)
    with pytest.raises(InputError) as error:
        inputs.open_image(image)
    assert _one_sentence_naming(str(error.value), "bomb.png")
    assert "4096 pixels a side" in str(error.value)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_one_bad_file_in_a_batch_gets_its_own_error_and_the_others_are_classified(tmp_path):
    zero, seven = sorted(EXAMPLES.glob("digits-sketch__0__*.png"))[0], sorted(
        EXAMPLES.glob("digits-sketch__7__*.png"))[0]
    bomb = _png_claiming(tmp_path / "bomb.png", 20000, 20000)
    result = _cmcd("classify", "--pair", "digits-sketch", str(zero), str(bomb), str(seven), "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    entries = json.loads(result.stdout)["results"]
    assert [entry.get("label") for entry in entries] == ["0", None, "7"]
    assert set(entries[1]) == {"file", "error"} and "bomb.png" in entries[1]["error"]


# --- 3. seeds in the Distill tab -----------------------------------------------------------------

def test_a_seed_beyond_32_bits_is_refused_by_the_config():
    from cmcd.train.config import DistillConfig

    assert DistillConfig(seed=2 ** 32 - 1).seed == 2 ** 32 - 1
    with pytest.raises(ValueError, match="seed"):
        DistillConfig(seed=2 ** 32)


@pytest.mark.parametrize("seed", [None, math.nan, math.inf, -1, 2 ** 32])
def test_a_bad_seed_in_the_distill_tab_is_one_sentence(seed):
    import gradio as gr

    import app

    with pytest.raises(gr.Error) as error:
        app.distill_config("digits-sketch", "cmc", 5, 8000, 256, 0.3, seed, {})
    assert "seed" in error.value.message and "\n" not in error.value.message


# --- 4. invalid audio, flat depth ----------------------------------------------------------------

def _tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("damage", ["nan", "inf", "all-nan"])
def test_audio_with_invalid_samples_is_refused(tmp_path, damage):
    samples = _tone(0.8)
    if damage == "all-nan":
        samples[:] = np.nan
    else:
        samples[100:200] = np.nan if damage == "nan" else np.inf
    soundfile.write(tmp_path / "bad.wav", samples, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="invalid samples") as error:
        get_modality("audio").read_file(tmp_path / "bad.wav")
    assert _one_sentence_naming(str(error.value), "bad.wav")


@pytest.mark.parametrize("samples", [np.array([0.5], np.float32), _tone(0.05)])
def test_too_short_audio_is_refused(tmp_path, samples):
    soundfile.write(tmp_path / "short.wav", samples, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="too short"):
        get_modality("audio").read_file(tmp_path / "short.wav")


def test_audio_errors_name_the_file_once_without_its_folder(tmp_path):
    folder = tmp_path / "gradio-temp-1234"
    folder.mkdir()
    (folder / "voice.wav").write_bytes(b"RIFF but not really a wave file")
    with pytest.raises(InputError) as error:
        get_modality("audio").read_file(folder / "voice.wav")
    assert _one_sentence_naming(str(error.value), "voice.wav")
    assert "gradio-temp-1234" not in str(error.value)


def test_a_flat_depth_map_is_refused(tmp_path):
    flat = np.full((64, 64), 700, dtype=np.uint16)
    flat[:4] = 0  # missing readings do not count
    Image.fromarray(flat).save(tmp_path / "flat.png")
    np.save(tmp_path / "flat.npy", np.full((32, 32), 0.7))
    for name in ("flat.png", "flat.npy"):
        with pytest.raises(InputError, match="the depth map is flat"):
            get_modality("depth").read_file(tmp_path / name)


# --- 5. the cache --------------------------------------------------------------------------------

def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "changed":
        data[-10] ^= 0xFF  # inside the last tensor's bytes
        path.write_bytes(bytes(data))
    else:  # written before checksums
        tensors = cache.load_tensors(path)[0]
        save_file(tensors, str(path))


@pytest.mark.parametrize("how", ["truncated", "changed", "old"])
def test_a_damaged_cache_file_is_reported_and_not_used(tmp_path, how):
    path = tmp_path / "x.safetensors"
    cache.save_tensors(path, {"a": torch.arange(100.0)}, {"note": "kept"})
    tensors, meta = cache.load_cached(path)
    assert torch.equal(tensors["a"], torch.arange(100.0)) and meta == {"note": "kept"}
    _damage(path, how)
    reports = []
    assert cache.load_cached(path, report=reports.append) is None
    assert len(reports) == 1 and "x.safetensors" in reports[0] and "rebuil" in reports[0]


@pytest.mark.parametrize("how", ["truncated", "changed"])
def test_a_damaged_file_is_a_one_line_error_naming_it(tmp_path, how):
    path = tmp_path / "x.safetensors"
    cache.save_tensors(path, {"a": torch.arange(100.0)})
    _damage(path, how)
    with pytest.raises(cache.DamagedFile) as error:
        cache.load_tensors(path)
    assert _one_sentence_naming(str(error.value), "x.safetensors")


def _tiny_digits() -> sources.SourceImages:
    full = sources.load_source("digits")
    return sources.SourceImages(full.name, full.images[:30], full.labels[:30], full.ids[:30],
                                full.class_names, full.origin)


@pytest.mark.parametrize("how", ["truncated", "changed", "old"])
def test_damaged_pair_caches_are_rebuilt(tmp_path, monkeypatch, how):
    monkeypatch.setenv("CMCD_CACHE", str(tmp_path))
    spec, tiny = pairs.get_spec("digits-depth"), _tiny_digits()
    rows = {"pairs": np.arange(0, 10), "val": np.arange(10, 20), "test": np.arange(20, 30)}
    built = {"sources": lambda progress: pairs._load_or_build_sources(tiny, 0, progress),
             "targets": lambda progress: pairs._load_or_build_targets(spec, tiny, rows, 0, 0.3,
                                                                      progress)["test"]}
    files = {"sources": pairs._source_file("digits", tiny.origin, 0),
             "targets": pairs._target_file(spec, 0.3, 0)}
    for kind, build in built.items():
        first = build(lambda message: None)
        _damage(files[kind], how)
        messages = []
        assert torch.equal(build(messages.append), first)
        assert any(files[kind].name in m and "rebuil" in m for m in messages), messages
        assert torch.equal(build(lambda message: pytest.fail(message)), first)  # sound again


def test_damaged_speech_bank_reads_as_absent(tmp_path):
    from cmcd.modalities.audio import speech

    path = tmp_path / "speech-bank.safetensors"
    cache.save_tensors(path, {"waveforms": torch.zeros(2, 8), "labels": torch.zeros(2)},
                       {"voices": [], "splits": [], "settings": speech._bank_settings()})
    _damage(path, "truncated")
    assert speech._load_bank(path) is None


def test_damaged_map_coordinates_are_recomputed(tmp_path, monkeypatch):
    from cmcd.viz import maps

    monkeypatch.setenv("CMCD_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    first = maps.coordinates(teacher, student, "pca")
    written = list((paths.cache_dir() / "coordinates").iterdir())
    assert len(written) == 1
    _damage(written[0], "changed")
    assert np.array_equal(maps.coordinates(teacher, student, "pca"), first)


# --- 6. run folders ------------------------------------------------------------------------------

def _student_folder(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    save_student(run / "student", build_encoder("sketch", width=4),
                 {"pair": "digits-sketch", "method": "cmc", "teacher": "ft"})
    return run


@pytest.mark.parametrize("damage", ["truncated weights", "bad json", "missing modules"])
def test_a_damaged_student_is_one_line_naming_the_file(tmp_path, damage):
    run = _student_folder(tmp_path)
    weights, metadata = run / "student.safetensors", run / "student.json"
    if damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:300])
        name = "student.safetensors"
    elif damage == "bad json":
        metadata.write_text('{"modules": ')
        name = "student.json"
    else:
        metadata.write_text('{"pair": "digits-sketch"}')
        name = "student.json"
    with pytest.raises(ValueError) as error:
        load_student(run / "student")
    assert "\n" not in str(error.value) and name in str(error.value)


def test_cli_classify_with_a_damaged_run_names_the_file(tmp_path):
    run = _student_folder(tmp_path)
    (run / "student.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    example = sorted(EXAMPLES.glob("digits-sketch__*.png"))[0]
    result = _cmcd("classify", "--pair", "digits-sketch", "--run", str(run), str(example))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "student.safetensors" in result.stderr


def _fake_run():
    from cmcd.train.config import DistillConfig
    from cmcd.train.distill import DistillRun

    return DistillRun(DistillConfig(pair="digits-sketch", width=4), "cpu", metrics={"a": 1.0},
                      student=build_encoder("sketch", width=4),
                      embeddings={"student": np.zeros((3, 4), np.float32)})


def test_an_interrupted_save_leaves_no_run_and_no_leftovers(tmp_path, monkeypatch):
    from cmcd.train import run_files

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(run_files.np, "savez_compressed", fail)
    with pytest.raises(OSError):
        run_files.save_run(_fake_run(), tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_saving_over_a_run_replaces_it_whole(tmp_path):
    from cmcd.train import run_files

    out = tmp_path / "run"
    run_files.save_run(_fake_run(), out)
    (out / "student.json").write_text("stale")
    run_files.save_run(_fake_run(), out)
    assert [path.name for path in tmp_path.iterdir()] == ["run"]
    assert json.loads((out / "student.json").read_text())["pair"] == "digits-sketch"
    load_student(out / "student")


def test_a_run_record_with_bad_json_names_the_file(tmp_path):
    from cmcd.train import run_files

    out = run_files.save_run(_fake_run(), tmp_path / "run")
    (out / "metrics.json").write_text('{"zero_label_acc": ')
    with pytest.raises(ValueError) as error:
        run_files.load_run(out)
    assert _one_sentence_naming(str(error.value), "metrics.json")


def test_saving_into_a_folder_of_other_files_is_refused(tmp_path):
    from cmcd.train import run_files

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a run folder"):
        run_files.save_run(_fake_run(), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --- 7. messages ---------------------------------------------------------------------------------

def test_the_size_limit_reads_as_the_page_says(tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (inputs.MAX_FILE_BYTES + 1))
    with pytest.raises(InputError) as error:
        inputs.check_file(big)
    assert "the limit is 20 MB" in str(error.value) and "21" not in str(error.value)


def test_a_folder_is_not_a_file(tmp_path):
    (tmp_path / "drawings").mkdir()
    with pytest.raises(InputError, match="is a folder, not a file"):
        inputs.check_file(tmp_path / "drawings")
    with pytest.raises(InputError, match="no such file"):
        inputs.check_file(tmp_path / "missing.png")
