"""Real people in the spoken digits: the shipped FSDD recordings, their mix into the training pairs,
speaker-held-out variants, non-digit junk, and the calibration fitted on speakers never heard."""

import numpy as np
import pytest
import torch

from cmcd.data.junk import JunkKinds
from cmcd.eval import people, speakers
from cmcd.eval.confidence import Outputs
from cmcd.modalities import pairs
from cmcd.modalities.audio import REAL_SPEAKERS, fsdd, junk
from cmcd.modalities.audio import renderer as audio


def test_the_shipped_recordings_are_four_speakers_saying_every_digit_fifty_times():
    recorded = fsdd.recordings()
    assert recorded.waveforms.shape == (2000, audio.CLIP_SAMPLES)
    assert sorted(set(recorded.speakers)) == sorted(REAL_SPEAKERS)
    for speaker in REAL_SPEAKERS:
        assert torch.bincount(recorded.digits[recorded.of((speaker,))], minlength=10).tolist() == [50] * 10
    assert recorded.waveforms.abs().amax(1).min() == pytest.approx(1.0)  # levelled like a person's file
    with pytest.raises(ValueError, match="unknown FSDD speaker 'bob'; speakers: jackson"):
        recorded.of(("bob",))


def test_a_shipped_recording_is_what_the_file_reader_makes_of_it(tmp_path):
    from cmcd.data import person_files

    with np.load(fsdd.paths.source_data(fsdd.FILE)) as data:
        start, length = int(data["starts"][123]), int(data["lengths"][123])
        flac = data["flac"].tobytes()
    import io

    import soundfile

    stream, rate = soundfile.read(io.BytesIO(flac), dtype="float32", start=start, stop=start + length)
    path = person_files.write_sound(stream, rate, tmp_path / "recording")
    read = audio.features_from_file(path)
    assert torch.allclose(audio.log_mel(fsdd.recordings().waveforms[123:124])[0], read, atol=1e-3)


def test_speaker_variants_name_their_share_and_who_is_held_out():
    spec = pairs.get_spec("digits-audio-real-50-heldout-lucas")
    assert spec.base == "digits-audio" and spec.render_options["real_share"] == 0.5
    assert spec.render_options["real_speakers"] == ("jackson", "nicolas", "yweweler")
    assert speakers.held_out_speaker(spec.name) == "lucas"
    assert speakers.held_out_speaker("digits-audio") is None
    assert pairs.get_spec("digits-audio-real-0").render_options["real_share"] == 0.0
    with pytest.raises(ValueError, match="whole percent, 0 to 100"):
        pairs.get_spec("digits-audio-real-150")
    with pytest.raises(ValueError, match="no real speaker 'bob' to hold out; its speakers: jackson"):
        pairs.get_spec("digits-audio-heldout-bob")
    with pytest.raises(ValueError, match="unknown pair"):
        pairs.get_spec("digits-sketch-heldout-lucas")  # no real speakers in that pair


def test_the_share_of_real_voices_is_the_one_the_speaker_study_chose():
    """REAL_SHARE is written by hand; results/speakers.json (scripts/real_speakers.py) says which
    share the leave-one-speaker-out study chose, and the two must agree."""
    import json
    from pathlib import Path

    from cmcd.bench import speakers as study
    from cmcd.modalities.audio import REAL_SHARE

    report = json.loads((Path(__file__).resolve().parent.parent / "results" / "speakers.json").read_text())
    assert report["choice"] == study.choose_share(report["summary"])
    assert round(100 * REAL_SHARE) == report["choice"]["share"]
    assert pairs.get_spec("digits-audio").render_options["real_share"] == REAL_SHARE


def test_the_study_chooses_the_share_with_the_best_held_out_speaker_mean():
    from cmcd.bench import speakers as study

    found = {"0": {"loso_mean": 0.7}, "25": {"loso_mean": 0.83}, "50": {"loso_mean": 0.83}}
    assert study.choose_share(found)["share"] == 25  # a tie goes to the smaller share
    found["50"]["loso_mean"] = 0.84
    assert study.choose_share(found)["share"] == 50


def test_fold_students_distilled_from_another_teacher_are_refused(tmp_path, monkeypatch):
    """The calibration of the shipped student is fitted on its folds, so folds left over from an
    earlier teacher must not be read as if they were its own."""
    from cmcd.bench import speakers as study

    monkeypatch.setattr(study, "FOLDS_DIR", tmp_path)
    plan = study.Plan(epochs=1, width=8)
    for speaker in study.REAL_SPEAKERS:
        study.fold_stem(plan, study.variant_name(25, speaker), 0).with_suffix(".safetensors").touch()
    current = study._teacher_digest()
    monkeypatch.setattr(study, "load_student", lambda stem: ("student", {"teacher_digest": current}))
    assert set(study.fold_students(plan, 25).values()) == {"student"}
    monkeypatch.setattr(study, "load_student", lambda stem: ("student", {"teacher_digest": "0" * 16}))
    with pytest.raises(ValueError, match="another teacher"):
        study.fold_students(plan, 25)


def test_real_voices_replace_a_share_of_the_clips_with_the_allowed_speakers_own_digit():
    labels, ids = torch.arange(200) % 10, torch.arange(200)
    synthetic = audio.clean_clips(labels, ids, "train", 0)
    mixed = audio.clean_clips(labels, ids, "train", 0, real=audio.RealVoices(0.5, ("lucas",)))
    replaced = ~(mixed == synthetic).all(1)
    assert 0.3 < replaced.double().mean() < 0.7
    recorded = fsdd.recordings()
    lucas = recorded.of(("lucas",))
    for row in torch.nonzero(replaced).flatten().tolist():
        same = (recorded.waveforms[lucas] == mixed[row]).all(1)
        assert same.any() and int(recorded.digits[lucas][same][0]) == int(labels[row])
    alone = audio.clean_clips(labels[7:9], ids[7:9], "train", 0, real=audio.RealVoices(0.5, ("lucas",)))
    assert torch.equal(alone, mixed[7:9])  # an item's clip does not depend on its batch


@pytest.mark.parametrize("kind", ["music", "words"])
def test_music_and_non_digit_words_are_sounds_the_reader_takes(kind, tmp_path):
    from cmcd.modalities.audio import AUDIO

    written = JunkKinds({kind: junk.SOUNDS.makers[kind]}, junk.SOUNDS.write).write_files(tmp_path, 0, 2)
    for _, path in written:
        assert AUDIO.read_file(path).shape == (1, audio.N_MELS, audio.N_FRAMES)


def _view(speaker: str, shift: float, generator: torch.Generator) -> people.View:
    """A made-up fold: training items around 0, a held-out speaker `shift` lower, junk far lower."""
    def outputs(n, centre):
        layers = torch.randn(n, 6, generator=generator) + centre
        return Outputs(torch.randn(n, 10, generator=generator) * 3, torch.randn(n, 4, generator=generator),
                       layers)

    labels = torch.arange(200) % 10
    return people.View(outputs(300, 0.0), outputs(200, -0.2), labels, outputs(90, -4.0),
                       ["noise", "hum", "music"] * 30, outputs(200, -shift), labels, speaker)


def test_the_cut_fitted_on_held_out_speakers_flags_about_the_planned_share_of_them():
    generator = torch.Generator().manual_seed(0)
    folds = [_view(name, 0.5, generator) for name in REAL_SPEAKERS]
    detectors = [people.fit_detector(view.train, view.junk) for view in folds]
    _, cut = people.fit_cut(folds, detectors)
    flagged = torch.cat([people._z_scores(view, detector, view.held_out) < cut
                         for view, detector in zip(folds, detectors, strict=True)])
    assert flagged.double().mean() <= people.REAL_FLAG_RATE + 0.01
    report = people.nested_report(folds, detectors)
    assert set(report["per_speaker"]) == set(REAL_SPEAKERS)
    assert report["mean_unsure"] < 0.15
    assert min(report["mean_junk_flagged_by_kind_held_out"].values()) > 0.9


def test_the_try_it_text_states_the_real_speaker_figure(tmp_path, monkeypatch):
    import json

    from cmcd.app import shipped, tryit

    monkeypatch.setenv("CMCD_RESULTS", str(tmp_path))
    entry = {"student_digest": shipped.student_digest("digits-audio"), "junk_caught": 0.95,
             "real_speakers": {"loso_mean": 0.961, "unsure": 0.04},
             "synthetic_test": {"rendered": {"accuracy": 0.95},
                                "as_files": {"accuracy": 0.94, "unsure": 0.05}}}
    (tmp_path / "inputs.json").write_text(json.dumps({"pairs": {"digits-audio": entry}}))
    summary = tryit.student_summary("digits-audio")
    assert "never heard (four recorded speakers, each new to the student scored on them): **96.1%** " \
           "read right, 4% \"not sure\"" in summary


def test_bench_inputs_reports_the_real_speaker_figures_recorded_at_calibration():
    from types import SimpleNamespace

    from cmcd.bench import inputs

    row = {"accuracy": 0.9, "unsure": 0.05, "ece": 0.03, "ece_before": 0.08}
    report = {"per_speaker": {"lucas": row, "jackson": {**row, "accuracy": 1.0}}, "mean_accuracy": 0.95,
              "mean_unsure": 0.05, "mean_ece": 0.03, "mean_ece_before": 0.08,
              "mean_junk_flagged_by_kind_held_out": {"words": 0.7}}
    calibration = {"score": "detector", "temperature": 1.5,
                   "validation": {"method": "folds", "held_out_speakers": report}}
    model = SimpleNamespace(metadata={"calibration": calibration})
    found = inputs.real_speakers_of(model)
    assert found["loso_accuracy"] == {"lucas": 0.9, "jackson": 1.0} and found["loso_mean"] == 0.95
    assert found["ece"] == {"before": 0.08, "after": 0.03} and found["unsure"] == 0.05
    assert inputs.real_speakers_of(SimpleNamespace(metadata={})) is None


def test_the_readme_says_when_a_speaker_study_predates_todays_teacher(tmp_path, readme_results):
    import json

    from cmcd.bench import speakers as study

    summary = {"25": {"loso": {"lucas": 0.9}, "loso_mean": 0.9, "synthetic_validation": 0.9}}

    def written(settings: dict) -> str:
        (tmp_path / "speakers.json").write_text(json.dumps(
            {"settings": settings, "runs": [{"seed": 0}], "summary": summary,
             "choice": {"share": 25, "rule": "the best"}}))
        return " ".join(readme_results.speaker_study())

    today = study.study_settings(5, 16)
    assert "Chosen: **25 %**" in written(today) and "another teacher" not in written(today)
    older = written({**today, "teacher_digest": "an earlier teacher"})
    assert "another teacher or recipe" in older
    assert "real_speakers.py --shares 25 --seeds 0 --epochs 5 --width 16" in older


def test_the_readme_says_when_a_speaker_study_held_out_only_some_speakers(tmp_path, readme_results):
    import json

    from cmcd.bench import speakers as study

    def written(held_out: dict) -> str:
        summary = {"50": {"loso": held_out, "loso_mean": 0.9, "synthetic_validation": 0.9}}
        (tmp_path / "speakers.json").write_text(json.dumps(
            {"settings": study.study_settings(5, 16), "runs": [{"seed": 0}], "summary": summary}))
        return " ".join(readme_results.speaker_study())

    assert "only nicolas held out" in written({"nicolas": 0.9})
    assert "held out, so not comparable" not in written(dict.fromkeys(study.REAL_SPEAKERS, 0.9))


def test_the_readme_names_the_speaker_study_at_the_shipped_students_length(tmp_path, readme_results):
    import json

    from cmcd.bench import speakers as study

    shipped = json.loads((readme_results.CHECKPOINTS / "student-digits-audio.json").read_text())["config"]
    summary = {"50": {"loso": {"lucas": 0.9}, "loso_mean": 0.9, "synthetic_validation": 0.9}}
    for epochs in (shipped["epochs"], 7):
        folder = tmp_path / f"speakers-e{epochs}"
        folder.mkdir()
        (folder / "speakers.json").write_text(json.dumps(
            {"settings": study.study_settings(epochs, shipped["width"]), "runs": [{"seed": 0}],
             "summary": summary}))
    shorter, longer = readme_results.speaker_study()[::2]  # each study is a line and a blank one
    assert "at another length than the shipped student's (7 epochs" in shorter
    assert f"at the shipped student's length ({shipped['epochs']} epochs" in longer
