"""Samples written as the files people give: pictures as 8-bit PNG, depth maps as .npy, recordings
as 16-bit WAV. Checks that must see what the file readers make of an input (the "not sure"
calibration, `cmcd bench inputs`) write their inputs with these and read them back."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from cmcd.data import cache


def write_picture(grey: np.ndarray, stem: Path) -> Path:
    """Greyscale (H, W) in [0, 1] as STEM.png."""
    path = Path(stem).with_suffix(".png")
    image = Image.fromarray((np.clip(grey, 0, 1) * 255).round().astype(np.uint8), mode="L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    cache.atomic_write_bytes(path, buffer.getvalue())
    return path


def write_depth(depth: np.ndarray, stem: Path) -> Path:
    """A depth map (H, W), 0 = no reading, as STEM.npy (float32)."""
    path = Path(stem).with_suffix(".npy")
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(depth, dtype=np.float32))
    cache.atomic_write_bytes(path, buffer.getvalue())
    return path


def write_sound(wave: np.ndarray, rate: int, stem: Path) -> Path:
    """A mono wave in [-1, 1] as STEM.wav (16-bit PCM)."""
    path = Path(stem).with_suffix(".wav")
    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(wave, dtype=np.float32), int(rate), format="WAV", subtype="PCM_16")
    cache.atomic_write_bytes(path, buffer.getvalue())
    return path
