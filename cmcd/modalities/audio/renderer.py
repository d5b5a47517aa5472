"""Spoken digits as log-mel images: synthetic speech made to sound like real recordings.

Clean synthetic speech is too easy and unlike what people record, so every clip goes through a
recording chain: speed change, time shift, room reverberation, background noise (white, pink,
brown, babble or mains hum), a microphone and line (spectral tilt; sometimes an 8 kHz recorder or
a telephone band) and a level change with clipping. `gap` in [0, 1] sets how strong all of it is,
from a quiet close microphone (0: only noise at 30 dB SNR) to noisy phone calls in halls (1).
Every random choice comes from `cmcd.data.rng`, keyed by item id and seed, and the arithmetic is kept
independent of the batch, so an item renders to the same bytes alone or in any batch, with the same
number of torch threads: the room's FFT convolution groups rows differently per thread count, and
a few items in 10,000 then differ by ~2e-7 in the wave (~1e-5 in the log-mel).
`without` leaves out INGREDIENTS (for the ablation of `cmcd bench ingredients`): "recorded-voices"
(espeak-ng alone), "warps" (flite and festival speakers as recorded) or "recording-chain" (gap 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio
import torchaudio.functional as AF

from cmcd.data import rng
from cmcd.modalities.audio import fsdd
from cmcd.modalities.audio.speech import (
    ACCENT_SPLITS,
    CLIP_SAMPLES,
    SAMPLE_RATE,
    clip_bank,
    fit_to_clip,
    peak_normalise,
    resample,
    trim_silence,
)

DEFAULT_GAP = 0.3
N_MELS = 40
N_FRAMES = 40
INGREDIENTS = ("recorded-voices", "warps", "recording-chain")  # what `without` may leave out
CHUNK_ITEMS = 250  # items rendered at once: small tensors stay in cache and skip page faults

# Standardisation of log-mel values, measured once on the clean espeak-only clip bank (mean and
# standard deviation of log_mel_unscaled over every clip), so features never depend on the batch.
# The bank with flite and festival gives -4.15 and 3.94: close enough to keep the shipped scale.
LOG_MEL_EPS = 1e-3
LOG_MEL_MEAN = -3.71
LOG_MEL_STD = 4.10

MAX_FILE_SECONDS = 10.0
MAX_SAMPLE_RATE = 384_000  # Hz, the fastest audio interfaces; resampling cost grows with the rate
SILENT_PEAK = 10 ** (-50 / 20)  # a recording whose peak stays under -50 dBFS is silence
MIN_SOUND_SECONDS = 0.1  # after trimming silence; a spoken digit lasts a few tenths of a second

ALLISON_DIGITS = Path("/usr/share/asterisk/sounds/en_US_f_Allison/digits")

# Augmentation settings: the strength of each effect at gap 1 (at gap 0 each is off or faint).
SPEED_STEP = 0.05  # speed factors are 1 + SPEED_STEP * k, k in -MAX_SPEED_STEPS..MAX_SPEED_STEPS
MAX_SPEED_STEPS = 3
MAX_SHIFT_SECONDS = 0.2
MAX_ROOM_SHARE = 0.8
MAX_RT60_SECONDS = 1.0
IMPULSE_SAMPLES = SAMPLE_RATE // 2 + 1  # half a second; CLIP_SAMPLES + this - 1 is FFT-friendly
MIN_SNR_DB = 0.0  # gap 0 always gives CLEAN_SNR_DB; gap 1 gives MIN_SNR_DB .. MIN_SNR_DB + 20
CLEAN_SNR_DB = 30.0
MAX_TILT_DB_PER_OCTAVE = 4  # whole dB per octave
MAX_NARROWBAND_SHARE = 0.6
GAIN_RANGE_DB = (-18.0, 6.0)
BABBLE_TALKERS = 4
HUM_HARMONICS = 5

WHITE, PINK, BROWN, BABBLE, HUM = range(5)
NOISE_KINDS = 5
FULL_BAND, EIGHT_KHZ_RECORDER, TELEPHONE = range(3)



@dataclass(frozen=True)
class RealVoices:
    """Recordings of real people in a split's clips: `share` of the items, by `speakers`."""

    share: float
    speakers: tuple[str, ...]


# Columns of the one uniform draw that holds every per-item choice of the chain.
_PARAMETERS = (
    "speed", "shift", "room", "rt60", "reverb_level", "noise_kind", "snr", "mains", "tilt", "band",
    "gain",
)


def _exact(function, *tensors: torch.Tensor) -> torch.Tensor:
    """function(*tensors) computed in float64 and rounded to float32.

    torch evaluates exp, pow, log, sin... with vector code for most elements of a tensor and
    scalar code for the rest, and the two round differently in float32; which elements get which
    depends on the tensor's size, so an item's bytes would depend on its batch.
    """
    return function(*(t.double() for t in tensors)).float()


def _amplitude(decibels: torch.Tensor) -> torch.Tensor:
    return _exact(torch.pow, torch.tensor(10.0), decibels / 20)


def _batch_independent(transform, *tensors: torch.Tensor) -> torch.Tensor:
    """transform(*tensors), computed for a lone row as for a row of a larger batch.

    MKL's FFT and oneDNN's convolution round a lone row differently from a batch, so a lone row is
    transformed as a pair of copies: an item then renders to the same bytes alone or in a batch.
    """
    if len(tensors[0]) != 1:
        return transform(*tensors)
    return transform(*(t.expand(2, *t.shape[1:]) for t in tensors))[:1]


# ---------------------------------------------------------------------------------------------
# Choosing clips


@cache
def _clips_by_label(voice_split: str, without: tuple[str, ...] = ()) -> tuple[torch.Tensor, ...]:
    """Bank indices of `voice_split` sorted by label, with each label's start and count."""
    if voice_split not in ACCENT_SPLITS:
        raise ValueError(f"voice_split must be one of {sorted(ACCENT_SPLITS)}, not {voice_split!r}")
    unknown = set(without) - set(INGREDIENTS)
    if unknown:
        raise ValueError(f"unknown audio ingredients {sorted(unknown)}; valid: {', '.join(INGREDIENTS)}")
    bank = clip_bank()
    per_label = [bank.select(voice_split, label, without) for label in range(10)]
    counts = torch.tensor([len(indices) for indices in per_label])
    starts = torch.cumsum(counts, 0) - counts
    return torch.cat(per_label), starts, counts


def pick_clips(labels: torch.Tensor, item_ids: torch.Tensor, voice_split: str, seed: int,
               without: tuple[str, ...] = ()):
    """For each item, the bank index of a clip of its label spoken by a voice of `voice_split`."""
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) <= 9:
        raise ValueError("labels must be digits 0-9")
    ordered, starts, counts = _clips_by_label(voice_split, tuple(sorted(without)))
    picks = rng.choice(item_ids, seed, "audio/clip", counts[labels]).long()
    return ordered[starts[labels] + picks]


# ---------------------------------------------------------------------------------------------
# The recording chain


def _change_speed(waves: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Play each wave 1 + SPEED_STEP * steps times faster (pitch moves too, like tape), keeping
    it centred in the clip. Items are grouped by their speed factor."""
    out = waves.clone()
    for step in steps.unique().tolist():
        if step == 0:
            continue
        rows = steps == step
        factor_percent = round(100 * (1 + SPEED_STEP * step))
        def speed_up(group, factor_percent=factor_percent):
            return resample(group, factor_percent, 100)

        changed = _batch_independent(speed_up, waves[rows])
        out[rows] = _centre_crop_or_pad(changed, CLIP_SAMPLES)
    return out


def _centre_crop_or_pad(waves: torch.Tensor, length: int) -> torch.Tensor:
    excess = waves.shape[-1] - length
    if excess >= 0:
        return waves[..., excess // 2 : excess // 2 + length]
    return torch.nn.functional.pad(waves, (-excess // 2, -excess - (-excess // 2)))


def _shift(waves: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Delay each wave by its shift in samples (negative: advance), filling with silence."""
    most = int(shifts.abs().max()) if len(shifts) else 0
    padded = torch.nn.functional.pad(waves, (most, most))
    windows = padded.unfold(1, waves.shape[-1], 1)  # a view: every window of the clip's length
    return windows[torch.arange(len(waves)), most - shifts]


def _room_impulse_responses(item_ids, seed: int, rt60: torch.Tensor, level_db: torch.Tensor):
    """A direct path followed by exponentially decaying noise: the sound of a room whose
    reverberation fades by 60 dB in rt60 seconds, its tail level_db relative to the direct path."""
    t = torch.arange(IMPULSE_SAMPLES) / SAMPLE_RATE
    tail = rng.normal(item_ids, seed, "audio/room", (IMPULSE_SAMPLES,))
    tail *= _exact(torch.exp, -math.log(1000) * t / rt60[:, None])  # amplitude -60 dB at rt60
    tail[:, 0] = 0
    tail *= (_amplitude(level_db) / _mean_power(tail).mul(IMPULSE_SAMPLES).sqrt())[:, None]
    tail[:, 0] = 1
    return tail


def _reverberate(waves: torch.Tensor, impulses: torch.Tensor) -> torch.Tensor:
    return _batch_independent(AF.fftconvolve, waves, impulses)[:, : waves.shape[-1]]


def _coloured_noise(item_ids, seed: int, exponent: torch.Tensor) -> torch.Tensor:
    """Noise whose power falls as 1 / f**exponent: 0 white, 1 pink, 2 brown."""
    white = rng.normal(item_ids, seed, "audio/noise", (CLIP_SAMPLES,))
    frequencies = torch.fft.rfftfreq(CLIP_SAMPLES, 1 / SAMPLE_RATE).clamp(min=20.0)
    shape = _exact(torch.pow, frequencies[None, :], -exponent[:, None] / 2)
    return _batch_independent(_filter, white, shape)


def _filter(waves: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Scale each rfft frequency bin of each wave by `gains`."""
    return torch.fft.irfft(torch.fft.rfft(waves) * gains, waves.shape[-1])


@lru_cache(maxsize=1)
def _babble_sources() -> torch.Tensor:
    """Babble is made of training voices only, so held-out voices never leak into training."""
    bank = clip_bank()
    return bank.waveforms[[split == "train" for split in bank.splits]]


def _babble(item_ids, seed: int) -> torch.Tensor:
    """Several talkers from the bank at random levels and offsets: a crowd in the background."""
    sources = _babble_sources()
    draws = rng.uniform(item_ids, seed, "audio/babble", (3, BABBLE_TALKERS))
    clips = (draws[:, 0] * len(sources)).long()
    offsets = ((draws[:, 1] - 0.5) * CLIP_SAMPLES).long()
    levels = 0.3 + 0.7 * draws[:, 2]
    babble = torch.zeros(len(clips), CLIP_SAMPLES)
    for talker in range(BABBLE_TALKERS):
        babble += levels[:, talker, None] * _shift(sources[clips[:, talker]], offsets[:, talker])
    return babble


@lru_cache(maxsize=1)
def _hum_basis() -> torch.Tensor:
    """sin and cos of the HUM_HARMONICS first harmonics of 50 and 60 Hz: (2, 2H, CLIP_SAMPLES)."""
    t = torch.arange(CLIP_SAMPLES, dtype=torch.float64) / SAMPLE_RATE
    harmonics = torch.arange(1, HUM_HARMONICS + 1, dtype=torch.float64)
    angles = 2 * math.pi * torch.tensor([50.0, 60.0])[:, None, None] * harmonics[:, None] * t
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).float()


def _mains_hum(item_ids, seed: int, mains: torch.Tensor) -> torch.Tensor:
    """50 or 60 Hz hum: harmonics at levels falling as 1/k with random phases. Since
    sin(x + phase) = cos(phase) sin(x) + sin(phase) cos(x), it is a weighted sum of fixed waves."""
    phases = 2 * math.pi * rng.uniform(item_ids, seed, "audio/hum", (HUM_HARMONICS,))
    levels = 1 / torch.arange(1, HUM_HARMONICS + 1)
    weights = torch.zeros(len(phases), 2, 2 * HUM_HARMONICS)  # zero for the other mains frequency
    weights[torch.arange(len(phases)), (mains >= 0.5).long()] = torch.cat(
        [_exact(torch.cos, phases) * levels, _exact(torch.sin, phases) * levels], dim=1
    )
    # A sum of scaled rows rather than a matrix product, whose rounding depends on the batch size.
    hum = torch.zeros(len(phases), CLIP_SAMPLES)
    for weight, wave in zip(weights.flatten(1).T, _hum_basis().flatten(0, 1), strict=True):
        hum += weight[:, None] * wave
    return hum


def _background_noise(item_ids, seed: int, kinds: torch.Tensor, mains: torch.Tensor):
    """Noise of each item's kind, scaled to unit power."""
    noise = torch.zeros(len(kinds), CLIP_SAMPLES)
    coloured, babble, hum = kinds <= BROWN, kinds == BABBLE, kinds == HUM
    if coloured.any():
        noise[coloured] = _coloured_noise(item_ids[coloured], seed, kinds[coloured].float())
    if babble.any():
        noise[babble] = _babble(item_ids[babble], seed)
    if hum.any():
        noise[hum] = _mains_hum(item_ids[hum], seed, mains[hum])
    return noise / _mean_power(noise).sqrt().clamp(min=1e-8)[:, None]


def _mean_power(waves: torch.Tensor) -> torch.Tensor:
    """Mean square of each row, summed in float64: how torch orders a float32 sum can change with
    the batch size, and with it the last bits of the result."""
    return ((waves * waves).sum(-1, dtype=torch.float64) / waves.shape[-1]).float()


def speech_power(waves: torch.Tensor) -> torch.Tensor:
    """Mean power over the frames where someone speaks (within 20 dB of the loudest frame), so
    that the silence around a word does not dilute the signal-to-noise ratio."""
    frames = _mean_power(waves.reshape(len(waves), -1, 400))
    speaking = frames > 0.01 * frames.amax(1, keepdim=True)
    return (frames * speaking).double().sum(1).float() / speaking.sum(1).clamp(min=1)


def _add_noise(waves: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    noise_power = speech_power(waves) / _amplitude(snr_db) ** 2
    return waves + noise * noise_power.sqrt()[:, None]


@lru_cache(maxsize=1)
def _tilt_curves() -> torch.Tensor:
    """Gain of each rfft bin for each whole-dB-per-octave spectral tilt around 1 kHz, from
    -MAX_TILT_DB_PER_OCTAVE to +MAX_TILT_DB_PER_OCTAVE: (2 * MAX + 1, bins)."""
    frequencies = torch.fft.rfftfreq(CLIP_SAMPLES, 1 / SAMPLE_RATE, dtype=torch.float64)
    octaves = torch.log2(frequencies.clamp(min=50.0) / 1000.0)
    slopes = torch.arange(-MAX_TILT_DB_PER_OCTAVE, MAX_TILT_DB_PER_OCTAVE + 1, dtype=torch.float64)
    return (10 ** (slopes[:, None] * octaves / 20)).float()


@lru_cache(maxsize=1)
def _band_responses() -> torch.Tensor:
    """Gain of each rfft bin for FULL_BAND, EIGHT_KHZ_RECORDER and TELEPHONE: (3, bins)."""
    frequencies = torch.fft.rfftfreq(CLIP_SAMPLES, 1 / SAMPLE_RATE, dtype=torch.float64)
    frequencies = frequencies.clamp(min=1.0)
    low_cut = torch.tensor([0.0, 0.0, 300.0], dtype=torch.float64)[:, None]
    high_cut = torch.tensor([SAMPLE_RATE, 3800.0, 3400.0], dtype=torch.float64)[:, None]
    return (_butterworth(low_cut / frequencies) * _butterworth(frequencies / high_cut)).float()


def _butterworth(frequency_over_cutoff: torch.Tensor) -> torch.Tensor:
    """Gain of a fourth-order Butterworth low-pass filter; given cutoff / frequency, a high-pass."""
    return 1 / torch.sqrt(1 + frequency_over_cutoff**8)


def augment(waveforms: torch.Tensor, item_ids, seed: int, gap: float = DEFAULT_GAP) -> torch.Tensor:
    """Pass clean clips (N, CLIP_SAMPLES) through a random recording chain whose strength grows
    with `gap` in [0, 1]; the result is (N, CLIP_SAMPLES), the same for the same ids, seed, gap."""
    if not 0.0 <= gap <= 1.0:
        raise ValueError(f"gap must be in [0, 1], not {gap}")
    item_ids = torch.as_tensor(np.asarray(item_ids, dtype=np.int64))
    if len(item_ids) == 0:
        return waveforms.float().clone()
    draws = rng.uniform(item_ids, seed, "audio/chain", (len(_PARAMETERS),))
    u = dict(zip(_PARAMETERS, draws.unbind(1), strict=True))

    speed_steps = torch.round((2 * u["speed"] - 1) * MAX_SPEED_STEPS * gap).long()
    waves = _change_speed(waveforms.float(), speed_steps)

    shifts = torch.round((2 * u["shift"] - 1) * MAX_SHIFT_SECONDS * SAMPLE_RATE * gap).long()
    waves = _shift(waves, shifts)

    in_room = u["room"] < MAX_ROOM_SHARE * gap  # the others are close to the microphone
    rt60 = 0.2 + (MAX_RT60_SECONDS - 0.2) * gap * u["rt60"]
    tail_db = -20.0 + 26.0 * gap * u["reverb_level"]  # reverberation vs direct sound
    if in_room.any():
        rooms = _room_impulse_responses(item_ids[in_room], seed, rt60[in_room], tail_db[in_room])
        waves[in_room] = _reverberate(waves[in_room], rooms)

    kinds = (u["noise_kind"] * NOISE_KINDS).long()
    snr_db = CLEAN_SNR_DB - gap * (CLEAN_SNR_DB - MIN_SNR_DB - 20.0 * u["snr"])
    waves = _add_noise(waves, _background_noise(item_ids, seed, kinds, u["mains"]), snr_db)

    tilt_steps = torch.round((2 * u["tilt"] - 1) * MAX_TILT_DB_PER_OCTAVE * gap).long()
    narrow_share = MAX_NARROWBAND_SHARE * gap  # half of it on the phone, half on 8 kHz recorders
    bands = torch.full((len(item_ids),), FULL_BAND)
    bands[u["band"] < narrow_share] = EIGHT_KHZ_RECORDER
    bands[u["band"] < narrow_share / 2] = TELEPHONE
    channels = _tilt_curves()[tilt_steps + MAX_TILT_DB_PER_OCTAVE] * _band_responses()[bands]
    waves = _batch_independent(_filter, waves, channels)  # microphone and line

    low, high = GAIN_RANGE_DB
    gain_db = gap * (low + (high - low) * u["gain"])
    return (waves * _amplitude(gain_db)[:, None]).clamp(-1.0, 1.0)  # a recorder clips at full scale


# ---------------------------------------------------------------------------------------------
# Features


@lru_cache(maxsize=1)
def _mel_spectrogram() -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE, n_fft=512, win_length=400, hop_length=CLIP_SAMPLES // N_FRAMES,
        n_mels=N_MELS,
    )


def log_mel_unscaled(waveforms: torch.Tensor) -> torch.Tensor:
    """Natural log of mel power, (N, N_MELS, N_FRAMES), before standardisation."""
    with torch.no_grad():
        mel = _mel_spectrogram()(waveforms.float())[..., :N_FRAMES]
    return _exact(torch.log, mel + LOG_MEL_EPS)


def log_mel(waveforms: torch.Tensor) -> torch.Tensor:
    """(N, CLIP_SAMPLES) waves -> (N, 1, N_MELS, N_FRAMES) standardised log-mel images."""
    return ((log_mel_unscaled(waveforms) - LOG_MEL_MEAN) / LOG_MEL_STD)[:, None]


# The standardised log-mel value of digital silence: the zeros a file's speech is centred between.
SILENT_FEATURE = (math.log(LOG_MEL_EPS) - LOG_MEL_MEAN) / LOG_MEL_STD


def frame_decibels(features: torch.Tensor) -> torch.Tensor:
    """The power of each frame of standardised log-mel images (N, 1, N_MELS, frames), in dB: (N, frames)."""
    power = torch.exp(features[:, 0] * LOG_MEL_STD + LOG_MEL_MEAN).sum(dim=1)
    return 10 * torch.log10(power)


# ---------------------------------------------------------------------------------------------
# Rendering


def _chunks(count: int):
    for start in range(0, count, CHUNK_ITEMS):
        yield slice(start, min(start + CHUNK_ITEMS, count))


def clean_clips(labels: torch.Tensor, item_ids: torch.Tensor, voice_split: str, seed: int,
                without: tuple[str, ...] = (), real: RealVoices | None = None) -> torch.Tensor:
    """Each item's clip before the recording chain: a synthetic voice of `voice_split`, or, for
    a share `real.share` of the items, a recording of a real person (one of `real.speakers`)."""
    clips = clip_bank().waveforms[pick_clips(labels, item_ids, voice_split, seed, without)]
    if real is None or real.share <= 0 or len(labels) == 0:
        return clips
    recorded = fsdd.recordings()
    rows = recorded.of(real.speakers)
    by_label = [rows[recorded.digits[rows] == label] for label in range(10)]
    counts = torch.tensor([len(r) for r in by_label])
    # row table[label, k]: the k-th recording of that digit (padded with the first)
    table = torch.stack([torch.cat([r, r[:1].expand(int(counts.max()) - len(r))]) for r in by_label])
    chosen = torch.nonzero(rng.uniform(item_ids, seed, "audio/real") < real.share).flatten()
    picks = rng.choice(item_ids[chosen], seed, "audio/real-clip", counts[labels[chosen]]).long()
    clips[chosen] = recorded.waveforms[table[labels[chosen], picks]]
    return clips


def render_waveforms(labels, item_ids, voice_split: str, seed: int, gap: float = DEFAULT_GAP,
                     without: tuple[str, ...] = (), real: RealVoices | None = None):
    """Recorded-sounding waves (N, CLIP_SAMPLES) of each item's digit, spoken by a voice of
    `voice_split` ("train", "val" or "test") or by a real person (`real`); `without`: INGREDIENTS
    left out."""
    labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    item_ids = torch.as_tensor(np.asarray(item_ids, dtype=np.int64))
    gap = 0.0 if "recording-chain" in without else gap
    waves = torch.empty(len(labels), CLIP_SAMPLES)
    for chunk in _chunks(len(labels)):
        clips = clean_clips(labels[chunk], item_ids[chunk], voice_split, seed, without, real)
        waves[chunk] = augment(clips, item_ids[chunk], seed, gap)
    return waves


def render(labels, item_ids, voice_split: str, seed: int, gap: float = DEFAULT_GAP,
           without: tuple[str, ...] = (), real: RealVoices | None = None) -> torch.Tensor:
    """Log-mel images (N, 1, N_MELS, N_FRAMES) float32 of each item's spoken digit."""
    labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    item_ids = torch.as_tensor(np.asarray(item_ids, dtype=np.int64))
    features = torch.empty(len(labels), 1, N_MELS, N_FRAMES)
    for chunk in _chunks(len(labels)):
        waves = render_waveforms(labels[chunk], item_ids[chunk], voice_split, seed, gap, without, real)
        features[chunk] = log_mel(waves)
    return features


# ---------------------------------------------------------------------------------------------
# Real recordings


def _read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate, or ValueError saying why the file cannot be used
    (one sentence that names the file by its base name alone)."""
    if not path.is_file():
        raise ValueError(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path.name}: the file is empty")
    try:
        info = soundfile.info(str(path))
        if info.samplerate > MAX_SAMPLE_RATE:
            raise ValueError(f"{path.name}: the recording's sample rate is {info.samplerate:,} Hz; "
                             f"at most {MAX_SAMPLE_RATE:,} Hz please")
        if info.duration > MAX_FILE_SECONDS:
            raise ValueError(f"{path.name}: the recording is {info.duration:.1f} s long; "
                             f"at most {MAX_FILE_SECONDS:g} s please")
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError) as error:
        # libsndfile's message holds the whole path (on a server, a temporary folder)
        reason = getattr(error, "error_string", None) or type(error).__name__
        raise ValueError(f"{path.name}: not a readable WAV, FLAC or OGG audio file ({reason})") from None
    if len(samples) == 0:
        raise ValueError(f"{path.name}: the file holds no audio samples")
    if not np.isfinite(samples).all():
        raise ValueError(f"{path.name}: the recording holds invalid samples (NaN or infinity)")
    return samples.mean(axis=1), rate


def load_audio_file(path) -> np.ndarray:
    """A recording as a clip like the bank's: float32 mono 16 kHz, CLIP_SAMPLES long, silence
    trimmed, peak 1, speech centred (longer speech is cropped to its loudest second)."""
    path = Path(path)
    samples, rate = _read_audio(path)
    if np.abs(samples).max() < SILENT_PEAK:
        raise ValueError(f"{path.name}: the recording is silent")
    wave = resample(torch.from_numpy(np.ascontiguousarray(samples)), rate).numpy()
    sound = trim_silence(wave)
    if len(sound) < MIN_SOUND_SECONDS * SAMPLE_RATE:
        raise ValueError(f"{path.name}: the recording is too short ({len(sound) / SAMPLE_RATE:.2f} s "
                         f"of sound); at least {MIN_SOUND_SECONDS:g} s please")
    return fit_to_clip(peak_normalise(sound))


def features_from_file(path) -> torch.Tensor:
    """Log-mel image (1, N_MELS, N_FRAMES) of a recording, without augmentation."""
    return log_mel(torch.from_numpy(load_audio_file(path))[None])[0]


def real_recordings() -> tuple[torch.Tensor, torch.Tensor] | None:
    """The digits 0-9 spoken by a real person (Allison, from Debian's asterisk-core-sounds-en-wav):
    features (10, 1, N_MELS, N_FRAMES) and labels, or None when the package is not installed."""
    paths = [ALLISON_DIGITS / f"{digit}.wav" for digit in range(10)]
    if not all(path.is_file() for path in paths):
        return None
    features = torch.stack([features_from_file(path) for path in paths])
    return features, torch.arange(10)
