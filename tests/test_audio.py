"""Spoken digits: the synthetic clip bank, the recording chain, log-mel features, real files."""

import numpy as np
import pytest
import soundfile
import torch

from cmcd.modalities.audio import renderer as audio
from cmcd.modalities.audio import speech, voices
from cmcd.modalities.audio.speech import CLIP_SAMPLES, SAMPLE_RATE

SPLITS = ("train", "val", "test")


def items(count: int, offset: int = 0):
    ids = torch.arange(offset, offset + count)
    return ids % 10, ids


def test_synthesize_gives_trimmed_normalised_speech():
    wave = speech.synthesize("seven", "en-us+f3", 135, 50)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 0.2 * SAMPLE_RATE < len(wave) < CLIP_SAMPLES
    assert np.abs(wave).max() == pytest.approx(1.0)


def test_clip_bank_holds_every_digit_for_every_split():
    bank = speech.clip_bank()
    assert bank.waveforms.shape == (len(bank.labels), CLIP_SAMPLES)
    assert bank.waveforms.dtype == torch.float32 and bank.labels.dtype == torch.int64
    assert len(bank.voices) == len(bank.splits) == len(bank.labels) > 3000
    for split in SPLITS:
        for digit in range(10):
            assert len(bank.select(split, digit)) > 0, (split, digit)


def test_speakers_of_the_three_splits_are_disjoint():
    bank = speech.clip_bank()
    voices = {split: {v for v, s in zip(bank.voices, bank.splits, strict=True) if s == split}
              for split in SPLITS}
    speakers = {split: {p for p, s in zip(bank.speakers, bank.splits, strict=True) if s == split}
                for split in SPLITS}
    for first, second in [("train", "val"), ("train", "test"), ("val", "test")]:
        assert not voices[first] & voices[second]
        assert not speakers[first] & speakers[second]


def test_every_split_has_recorded_voices_of_flite_and_festival():
    bank = speech.clip_bank()
    for split in SPLITS:
        engines = {v.split(":")[0] for v, s in zip(bank.voices, bank.splits, strict=True)
                   if s == split and ":" in v}
        assert {"flite"} <= engines, (split, engines)
    assert any(v.startswith("festival:") for v, s in zip(bank.voices, bank.splits, strict=True)
               if s == "test")


def test_warp_scales_frequencies_and_keeps_the_duration():
    t = torch.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = torch.sin(2 * torch.pi * 500 * t)[None]
    warped = voices.warp(tone, 1.2)
    assert abs(warped.shape[-1] - SAMPLE_RATE) <= 2
    spectrum = torch.fft.rfft(warped[0, 2000:-2000]).abs()
    peak_hz = spectrum.argmax().item() * SAMPLE_RATE / (warped.shape[-1] - 4000)
    assert 580 < peak_hz < 620, peak_hz


def test_missing_speech_engines_are_named(monkeypatch):
    monkeypatch.setattr(voices.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install flite festival"):
        voices.check_installed()


@pytest.mark.parametrize("split", SPLITS)
def test_render_gives_finite_float_images(split):
    labels, ids = items(64)
    features = audio.render(labels, ids, split, seed=0, gap=0.5)
    assert features.shape == (64, 1, 40, 40)
    assert features.dtype == torch.float32
    assert torch.isfinite(features).all()
    assert -1.0 < features.mean() < 1.5 and 0.5 < features.std() < 1.5


def test_same_seed_gives_identical_bytes_and_another_seed_differs():
    labels, ids = items(100)
    first = audio.render(labels, ids, "train", seed=3)
    assert torch.equal(first, audio.render(labels, ids, "train", seed=3))
    assert not torch.equal(first, audio.render(labels, ids, "train", seed=4))


@pytest.mark.parametrize("gap", [0.0, 1.0])
def test_an_item_renders_the_same_alone_as_in_a_batch(gap):
    labels, ids = items(300, offset=5000)
    batch = audio.render(labels, ids, "test", seed=1, gap=gap)
    for row in [0, 17, 123, 250, 299]:
        alone = audio.render(labels[row : row + 1], ids[row : row + 1], "test", seed=1, gap=gap)
        assert torch.equal(alone[0], batch[row]), row


def test_every_effect_grows_with_gap():
    labels, ids = items(200)
    clean = audio.log_mel(speech.clip_bank().waveforms[audio.pick_clips(labels, ids, "train", 0)])
    distances = [
        (audio.render(labels, ids, "train", seed=0, gap=gap) - clean).abs().mean().item()
        for gap in (0.0, 0.33, 0.66, 1.0)
    ]
    assert distances == sorted(distances) and distances[0] < 0.5 * distances[-1], distances


def estimated_snr_db(waves: torch.Tensor) -> torch.Tensor:
    """Blind estimate: energy of the loudest quarter of 25 ms frames over the quietest quarter."""
    frames = waves.reshape(len(waves), -1, 400).pow(2).mean(-1).sort(dim=1).values
    quarter = frames.shape[1] // 4
    loud, quiet = frames[:, -quarter:].mean(1), frames[:, :quarter].mean(1)
    return 10 * torch.log10(loud / quiet.clamp(min=1e-12))


def test_noise_is_louder_at_a_higher_gap():
    labels, ids = items(200)
    snr = {gap: estimated_snr_db(audio.render_waveforms(labels, ids, "val", 0, gap)).median()
           for gap in (0.0, 1.0)}
    assert snr[0.0] > 25 and snr[0.0] > snr[1.0] + 10, snr


def test_gap_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError):
        audio.augment(torch.zeros(1, CLIP_SAMPLES), [0], 0, gap=1.5)


def test_a_files_silent_edges_are_what_the_trimming_augmentation_writes(tmp_path):
    spoken = speech.synthesize("six", "en-us+m3", 135, 50)
    soundfile.write(tmp_path / "six.wav", spoken, SAMPLE_RATE)
    features = audio.features_from_file(tmp_path / "six.wav")
    first_frame, last_frame = features[0, :, 0], features[0, :, -1]
    assert torch.allclose(first_frame, torch.full_like(first_frame, audio.SILENT_FEATURE), atol=1e-5)
    assert torch.allclose(last_frame, torch.full_like(last_frame, audio.SILENT_FEATURE), atol=1e-5)


def test_trimming_augmentation_silences_the_edges_quieter_than_its_threshold():
    from cmcd.modalities.augment import trim_quiet_edges

    frame_db = torch.tensor([[-60.0, -60.0, -12.0, 0.0, -3.0, -12.0, -60.0]] * 2)
    x = torch.randn(2, 1, 4, 7)
    generator = torch.Generator().manual_seed(0)

    def silenced(threshold, probability=1.0):
        out = trim_quiet_edges(x, generator, frame_db, -9.0, probability, (threshold, threshold))
        quiet = (out == -9.0).all(dim=2)[:, 0]
        assert torch.equal(torch.where(quiet[:, None, None, :], x, out), x)  # the rest is untouched
        return quiet.tolist()

    assert silenced(-20.0) == [[True, True, False, False, False, False, True]] * 2  # weak edges kept
    assert silenced(-5.0) == [[True, True, True, False, False, True, True]] * 2
    assert silenced(-5.0, probability=0.0) == [[False] * 7] * 2


def test_load_audio_file_accepts_44k_stereo(tmp_path):
    clip = speech.clip_bank().waveforms[0]
    high_rate = speech.resample(clip, SAMPLE_RATE, 44100).numpy()
    path = tmp_path / "digit.wav"
    soundfile.write(path, np.stack([0.5 * high_rate, 0.3 * high_rate], axis=1), 44100)

    wave = audio.load_audio_file(path)
    assert wave.dtype == np.float32 and wave.shape == (CLIP_SAMPLES,)
    assert np.abs(wave).max() == pytest.approx(1.0)
    assert np.corrcoef(wave, clip.numpy())[0, 1] > 0.9  # the same speech, centred again
    assert audio.features_from_file(path).shape == (1, 40, 40)


def test_load_audio_file_refuses_unusable_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("these are my notes, not a recording\n")
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    long = tmp_path / "long.flac"
    soundfile.write(long, 0.1 * np.random.default_rng(0).standard_normal(11 * 8000), 8000)

    cases = [(empty, "empty"), (text, "not a readable"), (silent, "silent"), (long, "long")]
    for path, reason in cases:
        with pytest.raises(ValueError, match=reason):
            audio.load_audio_file(path)
    with pytest.raises(ValueError, match="no such file"):
        audio.load_audio_file(tmp_path / "missing.wav")


def test_real_recordings_load_when_installed(require):
    require("real recordings")
    features, labels = audio.real_recordings()
    assert features.shape == (10, 1, 40, 40) and torch.isfinite(features).all()
    assert torch.equal(labels, torch.arange(10))


def test_digits_are_learnable_but_not_trivial_across_accents():
    # A linear classifier fitted in closed form: as telling as logistic regression here, far faster.
    from sklearn.linear_model import RidgeClassifier

    train_labels, train_ids = items(1500)
    test_labels, test_ids = items(600, offset=10**6)
    train = audio.render(train_labels, train_ids, "train", seed=1).flatten(1).numpy()
    test = audio.render(test_labels, test_ids, "test", seed=2).flatten(1).numpy()
    model = RidgeClassifier(alpha=100.0).fit(train, train_labels.numpy())
    accuracy = model.score(test, test_labels.numpy())
    print(f"linear classifier on held-out accents at gap {audio.DEFAULT_GAP}: {accuracy:.3f}")
    assert 0.5 < accuracy < 0.99


def test_the_recorded_pair_hears_each_split_from_real_speakers_of_its_own():
    import cmcd.modalities.audio as spoken
    from cmcd.modalities import pairs
    from cmcd.modalities.audio import fsdd
    from cmcd.modalities.base import RenderRequest

    spec = pairs.get_spec("digits-audio-recorded")
    assert spec.default_gap == 0.0 and spec.base is None  # its validation and test are its own
    labels, ids = items(20)
    heard = {split: spoken.real_voices(RenderRequest(None, ids, labels, split, 0, 0.0, spec.render_options))
             for split in pairs.TARGET_SPLITS}
    assert all(voices.share == 1.0 for voices in heard.values())
    speakers = [set(voices.speakers) for voices in heard.values()]
    assert set.union(*speakers) == set(spoken.REAL_SPEAKERS) and sum(map(len, speakers)) == 4
    # and what the validation split renders is its speaker's recordings of each item's digit
    recorded = fsdd.recordings()
    rows = recorded.of(heard["val"].speakers)
    clips = audio.clean_clips(labels, ids, "val", 0, real=heard["val"])
    for clip, label in zip(clips, labels.tolist(), strict=True):
        assert any(torch.equal(clip, recorded.waveforms[row]) for row in rows[recorded.digits[rows] == label])
    # the synthetic pair's validation stays synthetic
    base = pairs.get_spec("digits-audio")
    assert spoken.real_voices(RenderRequest(None, ids, labels, "val", 0, 0.3, base.render_options)) is None


def test_only_a_pair_with_real_recordings_has_a_recorded_variant():
    from cmcd.modalities import pairs

    with pytest.raises(ValueError, match="no real recordings"):
        pairs.get_spec("digits-depth-recorded")
