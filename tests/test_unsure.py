"""Real people's input: calibrated confidence, "not sure" on junk, per-file errors, and the audio
formats browsers produce."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from cmcd.data import person_files
from cmcd.eval import confidence
from cmcd.eval.classify import Classifier, classify_files, describe
from cmcd.modalities import get_modality, read_back
from cmcd.modalities.audio import junk as sound_junk
from cmcd.modalities.sketch import drawn_styles, strokes
from cmcd.models.checkpoints import load_student, save_student, update_student_metadata
from cmcd.paths import checkpoint_root, examples_dir

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_digit_students_are_calibrated():
    """The tests of "not sure" below need it: a student shipped without it fails here."""
    for pair in ("digits-sketch", "digits-depth", "digits-audio"):
        metadata = json.loads((checkpoint_root() / f"student-{pair}.json").read_text())
        assert metadata.get("calibration"), pair


# --- calibration, on made-up logits ----------------------------------------------------------------

def _overconfident(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a classifier right about 70 % of the time but sure of itself every time."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (count,), generator=generator)
    answers = torch.where(torch.rand(count, generator=generator) < 0.7, labels,
                          torch.randint(0, 10, (count,), generator=generator))
    logits = torch.randn(count, 10, generator=generator)
    logits[torch.arange(count), answers] += 8.0
    return logits, labels


def test_temperature_fitted_on_validation_lowers_the_nll_there_and_on_new_items():
    logits, labels = _overconfident(2000, seed=0)
    temperature = confidence.fit_temperature(logits, labels)
    assert temperature > 1.5  # an overconfident classifier is softened
    assert confidence.nll(logits, labels, temperature) < 0.8 * confidence.nll(logits, labels)
    new_logits, new_labels = _overconfident(2000, seed=1)
    assert confidence.nll(new_logits, new_labels, temperature) < confidence.nll(new_logits, new_labels)
    calibrated = confidence.Calibration(temperature).probabilities(new_logits)
    assert torch.equal(calibrated.argmax(1), new_logits.argmax(1))  # the answer never changes
    assert abs(float(calibrated.max(1).values.mean()) - 0.7) < 0.05  # confidence ~ accuracy


def _outputs(features: torch.Tensor, classes: int = 10) -> confidence.Outputs:
    embeddings = torch.nn.functional.normalize(features, dim=1)
    return confidence.Outputs(embeddings[:, :classes] * 10, embeddings, features.abs())


def test_the_detector_flags_junk_and_few_real_items_and_survives_json():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(600, 16, generator=generator) + 3.0
    junk_items = torch.randn(200, 16, generator=generator) - 1.0
    fit = confidence.FitSet(_outputs(real[:300]), torch.randint(0, 10, (300,), generator=generator),
                            _outputs(real[300:]), _outputs(junk_items[:100]), ["a", "b"] * 50,
                            prototypes=torch.randn(10, 16, generator=generator))
    calibration, report = confidence.fit_calibration(fit)
    assert set(report["scores"]) == {"max_softmax", "energy", "prototype", "detector"}
    assert report["nll"]["after"] <= report["nll"]["before"]
    stored = confidence.Calibration.from_json(json.loads(json.dumps(calibration.to_json())))
    assert stored.score == calibration.score
    assert float(stored.unsure(_outputs(junk_items[100:])).double().mean()) > 0.9
    fresh = torch.randn(300, 16, generator=generator) + 3.0
    assert float(stored.unsure(_outputs(fresh)).double().mean()) < 0.12


def test_a_student_saved_without_calibration_is_never_unsure():
    calibration = confidence.Calibration.from_json(None)
    outputs = _outputs(torch.randn(5, 16))
    assert calibration.temperature == 1.0 and not calibration.unsure(outputs).any()


def test_calibration_is_added_to_a_students_json_and_the_weights_stay(tmp_path):
    student = get_modality("sketch").build_encoder(width=4)
    stem = save_student(tmp_path / "student", student, {"pair": "digits-sketch"})
    weights = stem.with_suffix(".safetensors").read_bytes()
    update_student_metadata(stem, calibration={"temperature": 2.0, "score": None,
                                               "threshold": 0.0})
    assert stem.with_suffix(".safetensors").read_bytes() == weights
    _, metadata = load_student(stem)
    assert metadata["pair"] == "digits-sketch" and metadata["calibration"]["temperature"] == 2.0


def test_a_second_students_calibration_reuses_the_files_read_back_and_fits_its_own(monkeypatch):
    """A visitor's every run is calibrated: the items and junk read back as files are the same for
    every student of a pair, so they are made once per process; the fit itself is each student's."""
    written = []
    real = read_back.items_read_back
    monkeypatch.setattr(read_back, "items_read_back", lambda *args: written.append(args) or real(*args))
    confidence.fit_inputs.cache_clear()
    torch.manual_seed(0)
    students = [get_modality("depth").build_encoder(width=4).eval() for _ in range(2)]  # two random ones
    first, second = (confidence.calibrate_student(s, "digits-depth", items=40, per_kind=4) for s in students)
    assert len(written) == 2  # validation and training items, read back once, for the first student
    assert first["validation"]["val_items"] == second["validation"]["val_items"] > 0
    assert first["validation"]["nll"] != second["validation"]["nll"]  # each fitted on its own outputs
    confidence.fit_inputs.cache_clear()


# --- generated inputs --------------------------------------------------------------------------------

@pytest.mark.parametrize("modality", ["sketch", "depth", "audio"])
def test_junk_is_the_same_for_the_same_seed_and_some_of_it_is_refused(modality, tmp_path):
    kinds = get_modality(modality).junk
    first = kinds.write_files(tmp_path / "a", seed=3, per_kind=2)
    again = kinds.write_files(tmp_path / "b", seed=3, per_kind=2)
    assert [kind for kind, _ in first] == [kind for kind, _ in again]
    for (kind, a), (_, b) in zip(first, again, strict=True):
        if kind in kinds.unrepeatable:  # the same item, other samples (and after trimming, lengths)
            assert a.stat().st_size > 44 and b.stat().st_size > 44, kind  # more than a WAV header
        else:
            assert a.read_bytes() == b.read_bytes(), kind
    read = read_back.read_back(get_modality(modality), first)
    refused = [kind for kind, count in read.refused.items() if count == 2]
    assert refused == [list(kinds.makers)[-1]]  # the blank canvas, no readings, silence


def test_held_out_junk_kinds_are_never_calibrated_on_and_drawn_the_same_either_way(tmp_path):
    kinds = get_modality("sketch").junk
    assert set(kinds.held_out) <= set(kinds.makers)
    assert not set(kinds.calibration_kinds) & set(kinds.held_out)
    assert {"mouse letter", "letter", "arrow", "tick"} <= set(kinds.calibration_kinds)
    every = kinds.write_files(tmp_path / "every", seed=3, per_kind=1)
    fitted = kinds.write_files(tmp_path / "fit", seed=3, per_kind=1, kinds=kinds.calibration_kinds)
    assert [kind for kind, _ in fitted] == list(kinds.calibration_kinds)
    same_kind = {kind: path for kind, path in every}
    assert all(path.read_bytes() == same_kind[kind].read_bytes() for kind, path in fitted)


def test_peoples_ways_of_writing_are_measured_in_fonts_no_training_item_uses():
    from cmcd.modalities.sketch import people_digits

    assert set(drawn_styles.PEOPLES_WAYS) <= set(drawn_styles.STYLES)
    assert not set(drawn_styles.MEASURING_FONTS) & set(people_digits.TRAINING_FONTS)
    for style in drawn_styles.PEOPLES_WAYS:
        drawing = drawn_styles.draw_in_style(style, np.zeros((28, 28), np.uint8), 1, 0, 0)
        assert 0.0 <= drawing.min() < 0.5 < drawing.max() <= 1.0  # dark ink on white paper


def test_letters_and_digits_are_drawn_as_dark_strokes_on_white_paper():
    rng = np.random.default_rng(0)
    letter = strokes.draw(strokes.LETTERS["L"], strokes.Pen(canvas=(200, 300), width=9), rng)
    assert letter.shape == (200, 300) and letter.max() == 1.0 and letter.min() == 0.0
    assert 0.01 < (letter < 0.5).mean() < 0.2
    for label in range(10):
        digit = drawn_styles.draw_in_style("thin pen strokes", np.zeros((28, 28), np.uint8), label, 0, label)
        assert 0.0 <= digit.min() < 0.5 < digit.max() <= 1.0


# --- the shipped students ------------------------------------------------------------------------------

@pytest.mark.parametrize("pair", ["digits-sketch", "digits-depth"])
def test_shipped_students_flag_junk_and_few_real_test_items(pair):
    model = Classifier(pair)
    spec = model.spec
    read = read_back.junk_read_back(spec.target, seed=5, per_kind=6)
    flagged = sum(r["unsure"] for r in model.predict_many(read.samples))
    assert (flagged + sum(read.refused.values())) / sum(read.made.values()) >= 0.8
    items = read_back.items_read_back(spec, "test", read_back.spread_rows(spec, "test", 60), 0.3)
    results = model.predict_many(items.samples)
    assert np.mean([r["unsure"] for r in results]) <= 0.15
    assert np.mean([r["label"] == str(label) for r, label in zip(results, items.tags, strict=True)]) > 0.8


def test_classify_json_gives_confidence_and_unsure_and_refuses_empty_inputs(tmp_path):
    hum = person_files.write_sound(*sound_junk.hum(np.random.default_rng(1)), tmp_path / "hum")
    silence = person_files.write_sound(*sound_junk.silence(np.random.default_rng(1)), tmp_path / "quiet")
    short = tmp_path / "short.wav"
    soundfile.write(short, np.sin(np.arange(400) / 5) * 0.5, 16000)
    example = next(examples_dir().glob("digits-audio__3__*.wav"))
    result = subprocess.run([sys.executable, "-m", "cmcd", "classify", "--pair", "digits-audio", "--json",
                             str(example), str(hum), str(silence), str(short)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    said, heard_hum, quiet, too_short = json.loads(result.stdout)["results"]
    assert said["label"] == said["closest"] == "3" and said["unsure"] is False
    assert said["confidence"] == max(said["probs"].values()) and 0.1 <= said["confidence"] <= 1
    assert heard_hum["unsure"] is True
    assert "silent" in quiet["error"] and "too short" in too_short["error"]
    text = subprocess.run([sys.executable, "-m", "cmcd", "classify", "--pair", "digits-audio", str(hum)],
                          capture_output=True, text=True, cwd=ROOT)
    assert text.stdout.startswith(f"{hum}: Not sure — closest: ") and text.stdout.rstrip().endswith("%)")


def test_blank_canvas_and_empty_depth_map_stay_errors_of_their_own(tmp_path):
    blank = person_files.write_picture(np.ones((120, 90)), tmp_path / "blank")
    empty = person_files.write_depth(np.zeros((40, 40)), tmp_path / "empty")
    [sketch] = classify_files("digits-sketch", [blank])
    [depth] = classify_files("digits-depth", [empty])
    assert "blank" in sketch["error"] and "no valid readings" in depth["error"]


def test_the_words_for_a_sure_and_an_unsure_answer():
    assert describe({"closest": "6", "confidence": 0.934, "unsure": False}) == "6 (93 %)"
    assert describe({"closest": "6", "confidence": 0.41, "unsure": True}) == "Not sure — closest: 6 (41 %)"


# --- audio as browsers record it ------------------------------------------------------------------------

def _encode(wav: Path, out: Path, codec: str, rate: int = 48000) -> Path:
    """The WAV re-encoded with PyAV (FFmpeg) into `out`'s container, as a browser would save it."""
    import av

    samples, source_rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    frame = av.AudioFrame.from_ndarray(samples.mean(1)[None], format="flt", layout="mono")
    frame.sample_rate = source_rate
    with av.open(str(out), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(format=stream.codec_context.format, layout="mono", rate=rate)
        for piece in [*resampler.resample(frame), *resampler.resample(None), None]:
            for packet in stream.encode(piece):
                container.mux(packet)
    return out


def test_browser_audio_formats_read_like_the_wav(tmp_path):
    wav = next(examples_dir().glob("digits-audio__7__*.wav"))
    files = [wav] + [_encode(wav, tmp_path / f"recording{suffix}", codec) for suffix, codec in
                     ((".mp3", "libmp3lame"), (".m4a", "aac"), (".webm", "libopus"), (".ogg", "libopus"))]
    results = classify_files("digits-audio", files)
    assert [r.get("label") for r in results] == ["7"] * len(files), results
    reference = torch.tensor(list(results[0]["probs"].values()))
    for result in results[1:]:
        assert (torch.tensor(list(result["probs"].values())) - reference).abs().max() < 0.15


def test_a_broken_or_too_long_browser_recording_is_one_sentence(tmp_path):
    broken = tmp_path / "recording.webm"
    broken.write_bytes(b"\x1aE\xdf\xa3 not really a webm file")
    long = tmp_path / "long.wav"
    soundfile.write(long, np.sin(np.arange(16000 * 12) / 7) * 0.3, 16000)
    long_webm = _encode(long, tmp_path / "long.webm", "libopus")
    message = str(_error_of(broken))
    assert message.startswith("recording.webm: not a readable") and "\n" not in message
    assert str(_error_of(long_webm)).startswith("long.webm: the recording is longer than 10 s")


def _error_of(path: Path) -> Exception:
    with pytest.raises(ValueError) as caught:
        get_modality("audio").read_file(path)
    return caught.value
