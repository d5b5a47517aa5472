"""Microphone junk for "not sure": noise, mains hum, clicks, beeps, music, words that are not digits
and near silence."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cmcd.data import person_files
from cmcd.data.junk import JunkKinds

# --- sounds: (wave float32 in [-1, 1], sample rate) -------------------------------------------------

RATES = (8000, 16000, 22050, 44100, 48000)


def _seconds(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    rate = int(rng.choice(RATES))
    return np.arange(int(rate * rng.uniform(0.6, 2.0))) / rate, rate


def _level(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (wave / max(np.abs(wave).max(), 1e-9) * rng.uniform(0.05, 0.9)).astype(np.float32)


def noise(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """White, pink or brown noise (hiss, rumble)."""
    t, rate = _seconds(rng)
    spectrum = np.fft.rfft(rng.normal(0, 1, len(t)))
    frequencies = np.maximum(np.fft.rfftfreq(len(t), 1 / rate), 20.0)
    coloured = np.fft.irfft(spectrum * frequencies ** (-rng.uniform(0, 2) / 2), len(t))
    return _level(coloured, rng), rate


def hum(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Mains hum: 50 or 60 Hz and its harmonics, with a little hiss."""
    t, rate = _seconds(rng)
    mains = rng.choice([50.0, 60.0])
    wave = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.2, 1) / k
               for k in range(1, 8))
    return _level(wave + rng.normal(0, 0.01, len(t)), rng), rate


def clicks(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A train of clicks (a ticking clock, a mouse, a crackling line)."""
    t, rate = _seconds(rng)
    wave = rng.normal(0, 0.002, len(t))
    period = int(rate * rng.uniform(0.04, 0.3))
    for start in range(int(rng.integers(0, period)), len(t), period):
        length = int(rng.integers(5, 60))
        wave[start: start + length] += rng.normal(0, 1, len(wave[start: start + length]))
    return _level(wave, rng), rate


def beeps(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A steady tone, a sweep, or a few beeps."""
    t, rate = _seconds(rng)
    low, high = np.sort(rng.uniform(200, 3000, 2))
    frequency = low + (high - low) * t / t[-1] * rng.integers(0, 2)
    wave = np.sin(2 * np.pi * np.cumsum(frequency) / rate)
    if rng.uniform() < 0.5:
        wave *= np.sin(2 * np.pi * rng.uniform(1, 5) * t) > 0
    return _level(wave, rng), rate


def music(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A few plucked or held notes with overtones (a melody or chords from a radio, a ringtone)."""
    t, rate = _seconds(rng)
    wave = np.zeros(len(t))
    notes = int(rng.integers(2, 9))
    for start in np.sort(rng.uniform(0, t[-1] * 0.8, notes)):
        pitch = 110.0 * 2 ** (rng.integers(0, 36) / 12)  # equal-tempered, A2 to G#5
        sounding = t >= start
        since = t[sounding] - start
        decay = np.exp(-since * rng.uniform(1, 8))
        for overtone in range(1, 6):
            wave[sounding] += np.sin(2 * np.pi * pitch * overtone * since) * decay / overtone ** 1.5
    return _level(wave + rng.normal(0, 0.003, len(t)), rng), rate


NON_DIGIT_WORDS = ("hello", "yes", "stop", "apple", "water", "left", "right", "go", "okay", "thanks",
                   "house", "music", "coffee", "maybe", "please", "window", "yellow", "cat", "morning")
WORD_VOICES = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc")


def word(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Someone saying a word that is no digit ("hello", "stop", "coffee"), in a synthetic voice."""
    from cmcd.modalities.audio import speech

    voice = f"{rng.choice(WORD_VOICES)}+{rng.choice(speech.VARIANTS)}"
    spoken = speech.synthesize(str(rng.choice(NON_DIGIT_WORDS)), voice, int(rng.integers(110, 170)),
                               int(rng.integers(30, 70)))
    padded = np.concatenate([np.zeros(int(rng.integers(800, 8000))), spoken, np.zeros(4000)])
    return _level(padded + rng.normal(0, 0.002, len(padded)), rng), speech.SAMPLE_RATE


def silence(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Near silence (a microphone left open in a quiet room): refused, never classified."""
    t, rate = _seconds(rng)
    return rng.normal(0, 1e-4, len(t)).astype(np.float32), rate


def write_sound(made: tuple[np.ndarray, int], stem: Path) -> Path:
    wave, rate = made
    return person_files.write_sound(wave, rate, stem)


SOUNDS = JunkKinds({"noise": noise, "hum": hum, "clicks": clicks, "beeps": beeps, "music": music,
                    "words": word, "silence": silence}, write_sound, unrepeatable=("words",))
