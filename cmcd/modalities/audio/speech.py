"""Synthetic spoken digits from espeak-ng (through ctypes), flite and festival, in a cached bank.

An espeak voice is an English accent plus a voice variant ("en-gb-scotland+f2"); its speaker is the
accent. flite and festival voices are recordings of real people, warped to make more speakers
(cmcd.modalities.audio.voices). The bank is split by speaker, so no voice heard in training (same
accent or person, any variant or warp) is heard in validation or test.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torchaudio

from cmcd.data.cache import load_cached, save_tensors
from cmcd.modalities.audio import voices as engines
from cmcd.paths import cache_dir

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000  # one second
# Resampling: ratios whose terms (in lowest terms) are at most MAX_RATIO_TERM are exact (every rate
# the bank uses: 22,050, 16,000 and 8,000 Hz, and the speed changes' 90:100 and the like); others are
# rounded to a multiple of RATE_STEP, which divides 16 kHz and the usual rates (11.025, 44.1, 48 kHz).
MAX_RATIO_TERM = 1000
RATE_STEP = 50
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

log = logging.getLogger(__name__)

ACCENT_SPLITS = {
    "train": ["en-us", "en-us-nyc", "en", "en-gb-x-rp", "en-gb-x-gbclan"],
    "val": ["en-gb-x-gbcwmd"],
    "test": ["en-gb-scotland", "en-029"],
}
VARIANTS = ("f1", "f2", "f3", "f4", "m1", "m2", "m3", "m4", "m7", "croak", "klatt", "whisper")
RATES = (115, 150)  # words per minute; isolated digits are spoken slowly
PITCHES = (35, 65)  # espeak's 0..100 scale

SILENCE_THRESHOLD_DB = -35.0  # frames this far below the loudest frame count as silence
FRAME_SAMPLES = 160  # 10 ms at 16 kHz

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_POS_CHARACTERS = 1
_ESPEAK_CHARS_UTF8 = 1


def voice_name(accent: str, variant: str) -> str:
    return f"{accent}+{variant}"


# ---------------------------------------------------------------------------------------------
# espeak-ng through ctypes


class _Espeak:
    """The espeak-ng library, initialised once; synthesis appends samples to a Python list."""

    _CALLBACK = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
    )

    def __init__(self):
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.libc = ctypes.CDLL(None)  # the C library already loaded into this process
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        # espeak looks for an "espeak-ng-data" folder inside the path it is given.
        data_parent = str(Path(espeakng_loader.get_data_path()).parent)
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent.encode(), 0
        )
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise with data in {data_parent}")
        self._chunks: list[np.ndarray] = []
        self._callback = self._CALLBACK(self._collect)  # kept referenced so ctypes does not free it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples, count, _events):
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def _reseed(self):
        # Breathy variants (f2, f3, whisper, ...) mix in noise from C rand(): reseeding before each
        # utterance makes that noise the same every time.
        self.lib.espeak_ng_SetRandSeed(0)
        self.libc.srand(0)

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        """int16 samples at self.sample_rate."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_ESPEAK_RATE, rate, 0)
        self.lib.espeak_SetParameter(_ESPEAK_PITCH, pitch, 0)
        encoded = text.encode()
        self._reseed()
        self._chunks = []
        self.lib.espeak_Synth(
            encoded, len(encoded) + 1, 0, _POS_CHARACTERS, 0, _ESPEAK_CHARS_UTF8, None, None
        )
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)


@lru_cache(maxsize=1)
def _espeak() -> _Espeak:
    return _Espeak()


# ---------------------------------------------------------------------------------------------
# Waveform helpers shared with the audio renderer


def frame_energies_db(wave: np.ndarray) -> np.ndarray:
    """Energy of each 10 ms frame in dB relative to the loudest frame (0 dB = loudest)."""
    frames = len(wave) // FRAME_SAMPLES
    if frames == 0:
        return np.zeros(0)
    energy = (wave[: frames * FRAME_SAMPLES].reshape(frames, FRAME_SAMPLES) ** 2).mean(axis=1)
    return 10 * np.log10(energy / max(energy.max(), 1e-20) + 1e-20)


def trim_silence(wave: np.ndarray) -> np.ndarray:
    """Drop leading and trailing frames quieter than SILENCE_THRESHOLD_DB below the loudest."""
    loud = np.flatnonzero(frame_energies_db(wave) > SILENCE_THRESHOLD_DB)
    if len(loud) == 0:
        return wave[:0]
    return wave[loud[0] * FRAME_SAMPLES : (loud[-1] + 1) * FRAME_SAMPLES]


def peak_normalise(wave: np.ndarray) -> np.ndarray:
    peak = np.abs(wave).max() if len(wave) else 0.0
    return wave / peak if peak > 0 else wave


def fit_to_clip(wave: np.ndarray) -> np.ndarray:
    """Exactly CLIP_SAMPLES: shorter speech is centred between zeros, longer speech is cropped
    to its loudest second."""
    if len(wave) <= CLIP_SAMPLES:
        out = np.zeros(CLIP_SAMPLES, dtype=np.float32)
        start = (CLIP_SAMPLES - len(wave)) // 2
        out[start : start + len(wave)] = wave
        return out
    energy_before = np.concatenate([[0.0], np.cumsum(wave.astype(np.float64) ** 2)])
    window_energy = energy_before[CLIP_SAMPLES:] - energy_before[:-CLIP_SAMPLES]
    start = int(np.argmax(window_energy))
    return wave[start : start + CLIP_SAMPLES].astype(np.float32)


@lru_cache(maxsize=16)
def _resampler(from_rate: int, to_rate: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(from_rate, to_rate)  # builds its filter kernel once


def resampling_rate(from_rate: int, to_rate: int) -> int:
    """The rate to resample from: `from_rate` itself when from_rate:to_rate in lowest terms is a
    small ratio, else the nearest multiple of RATE_STEP. torchaudio's kernel holds about
    (to_rate / gcd) x (from_rate / gcd) numbers: 16001 Hz to 16 kHz (gcd 1) would take 1 GB and
    seconds to build, 16000 Hz none. The sound then plays at most RATE_STEP / 2 Hz off (0.3 %
    faster or slower at 8 kHz), which no listener, nor the student, notices."""
    divisor = math.gcd(from_rate, to_rate)
    if max(from_rate, to_rate) // divisor <= MAX_RATIO_TERM:
        return from_rate
    return max(RATE_STEP, round(from_rate / RATE_STEP) * RATE_STEP)


def resample(waves: torch.Tensor, from_rate: int, to_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Resample float waves along the last axis (one wave or a batch of them); an odd rate is
    rounded first (see resampling_rate)."""
    from_rate = resampling_rate(from_rate, to_rate)
    if from_rate == to_rate:
        return waves
    with torch.no_grad():
        return _resampler(from_rate, to_rate)(waves)


# ---------------------------------------------------------------------------------------------
# Synthesis


def synthesize(word: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """`word` spoken by `voice`: float32 mono at 16 kHz, silence trimmed, peak 1.

    The pitch flutter, and so the exact samples, depend on what this process synthesised before.
    """
    return synthesize_many([(word, voice, rate, pitch)])[0]


def synthesize_many(requests: list[tuple[str, str, int, int]]) -> list[np.ndarray]:
    """synthesize() for many (word, voice, rate, pitch), resampled together as one padded batch."""
    engine = _espeak()
    raw = [engine.speak(*request) for request in requests]
    padded = np.zeros((len(raw), max(len(r) for r in raw)), dtype=np.float32)
    for row, samples in enumerate(raw):
        padded[row, : len(samples)] = samples / 32768.0
    # The zero padding resamples to silence, which trimming removes.
    waves = resample(torch.from_numpy(padded), engine.sample_rate).numpy()
    return [peak_normalise(trim_silence(wave)) for wave in waves]


@dataclass
class ClipBank:
    """Every synthesised digit clip: waveforms (K, CLIP_SAMPLES), speech centred and zero padded
    (speech longer than a second, rare at these rates, is cropped to its loudest second)."""

    waveforms: torch.Tensor
    labels: torch.Tensor
    voices: list[str]
    splits: list[str]
    speakers: list[str]

    def select(self, split: str, label: int, without: tuple[str, ...] = ()) -> torch.Tensor:
        """Indices of the clips of `label` spoken by voices of `split` (see `kept` for `without`)."""
        in_split = torch.tensor([s == split and kept(v, without) for s, v in zip(self.splits, self.voices,
                                                                                 strict=True)])
        return torch.nonzero(in_split & (self.labels == label)).flatten()


def kept(voice: str, without: tuple[str, ...]) -> bool:
    """Whether a clip of `voice` stays when an ablation leaves out `without`: "recorded-voices"
    drops every flite and festival clip (voices named "VOICE:wFACTOR"), "warps" their warped
    copies (factor other than 1); espeak's clips always stay."""
    _, warped, factor = voice.partition(":w")
    if not warped:
        return True
    if "recorded-voices" in without:
        return False
    return "warps" not in without or float(factor) == 1.0


def bank_recipe() -> list[tuple[str, str, int, int, int]]:
    """(split, voice, rate, pitch, digit) for every clip of the bank, in bank order."""
    return [
        (split, voice_name(accent, variant), rate, pitch, digit)
        for split, accents in ACCENT_SPLITS.items()
        for accent, variant, rate, pitch, digit in itertools.product(
            accents, VARIANTS, RATES, PITCHES, range(len(DIGIT_WORDS))
        )
    ]


def _espeak_clips() -> tuple[list[np.ndarray], list[tuple[str, str, str, int]]]:
    """espeak's clips and their (split, speaker, voice, digit)."""
    recipe = bank_recipe()
    clips = []
    for start in range(0, len(recipe), 90):
        batch = recipe[start : start + 90]
        clips += synthesize_many([(DIGIT_WORDS[d], v, r, p) for _, v, r, p, d in batch])
    return clips, [(split, voice.split("+")[0], voice, d) for split, voice, _, _, d in recipe]


def _engine_clips() -> tuple[list[np.ndarray], list[tuple[str, str, str, int]]]:
    """flite's and festival's clips, each warped by every warp factor of its speaker's split."""
    spoken = engines.synthesize_engines()
    unwarped = [peak_normalise(trim_silence(_to_sample_rate(samples, rate)))
                for *_, samples, rate in spoken]
    clips, described = [], []
    for split, factors in engines.WARPS.items():
        rows = [row for row, (speaker, *_) in enumerate(spoken) if engines.split_of(speaker) == split]
        padded = torch.zeros(len(rows), max(len(unwarped[row]) for row in rows))
        for position, row in enumerate(rows):
            padded[position, : len(unwarped[row])] = torch.from_numpy(unwarped[row])
        for factor in factors:
            warped = engines.warp(padded, factor).numpy()
            clips += [peak_normalise(trim_silence(wave)) for wave in warped]
            described += [(split, spoken[row][0], f"{spoken[row][1]}:w{factor}", spoken[row][2])
                          for row in rows]
    return clips, described


def _to_sample_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    return resample(torch.from_numpy(np.ascontiguousarray(samples)), rate).numpy()


def _synthesize_bank() -> ClipBank:
    espeak_clips, espeak_described = _espeak_clips()
    engine_clips, engine_described = _engine_clips()
    clips, described = espeak_clips + engine_clips, espeak_described + engine_described
    return ClipBank(
        waveforms=torch.from_numpy(np.stack([fit_to_clip(clip) for clip in clips])),
        labels=torch.tensor([d for *_, d in described], dtype=torch.int64),
        voices=[v for _, _, v, _ in described],
        splits=[s for s, *_ in described],
        speakers=[speaker for _, speaker, *_ in described],
    )


def _bank_settings() -> dict:
    """What the bank was built from; a cached bank built from other settings is rebuilt. As read
    back from the file's JSON metadata (tuples become lists)."""
    return json.loads(json.dumps({
        "accent_splits": ACCENT_SPLITS, "variants": list(VARIANTS), "rates": list(RATES),
        "pitches": list(PITCHES), "silence_threshold_db": SILENCE_THRESHOLD_DB,
        "engine_voices": engines.ENGINE_VOICES, "speaker_splits": engines.SPEAKER_SPLITS,
        "warps": engines.WARPS, "tempos": engines.TEMPOS, "flite_pitches": engines.FLITE_PITCHES,
    }))


def _bank_path() -> Path:
    return cache_dir() / "speech-bank-v2.safetensors"


def _build_bank_file(path: str) -> None:
    bank = _synthesize_bank()
    save_tensors(
        Path(path),
        {"waveforms": bank.waveforms, "labels": bank.labels},
        {"voices": bank.voices, "splits": bank.splits, "speakers": bank.speakers,
         "settings": _bank_settings()},
    )


def _build_bank_in_fresh_process(path: Path) -> None:
    # espeak-ng's pitch flutter is a static counter that carries over from one utterance to the
    # next, so a clip depends on everything the process synthesised before it. Building in a
    # fresh process makes the bank the same on every build.
    import_paths = [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, import_paths))}
    code = f"from cmcd.modalities.audio.speech import _build_bank_file; _build_bank_file({str(path)!r})"
    engines.check_installed()  # before the fresh process, so a missing package says so plainly
    log.info("synthesising the spoken-digit clips (espeak-ng, flite, festival) ...")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    log.info(f"spoken-digit clips done in {time.perf_counter() - started:.1f} s")


def _load_bank(path: Path) -> ClipBank | None:
    """The bank stored at `path`, or None when absent, damaged or built from other settings."""
    cached = load_cached(path)
    if cached is None:
        return None
    tensors, meta = cached
    if meta.get("settings") != _bank_settings():
        return None
    return ClipBank(tensors["waveforms"], tensors["labels"], meta["voices"], meta["splits"],
                    meta["speakers"])


@lru_cache(maxsize=1)
def clip_bank() -> ClipBank:
    """The clip bank, synthesised on first use and cached on disk."""
    path = _bank_path()
    bank = _load_bank(path)
    if bank is None:
        _build_bank_in_fresh_process(path)
        bank = _load_bank(path)
    if bank is None:
        raise RuntimeError(f"building the speech clip bank did not produce {path}")
    return bank
