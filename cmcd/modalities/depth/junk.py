"""Depth-camera junk for "not sure": blobs, noise, ramps, a block and a map with no readings."""

from __future__ import annotations

import numpy as np

from cmcd.data import person_files
from cmcd.data.junk import JunkKinds

# --- depth maps: (H, W) float, 0 = no reading, larger = farther ------------------------------------

def _grid(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    height, width = (int(v) for v in rng.integers(24, 200, 2))
    return np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")


def blobs(rng: np.random.Generator) -> np.ndarray:
    """Round lumps in front of a wall."""
    y, x = _grid(rng)
    depth = np.full(y.shape, rng.uniform(1.0, 3.0))
    for _ in range(int(rng.integers(1, 7))):
        cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3)
        depth -= rng.uniform(0.1, 0.5) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    return depth


def depth_noise(rng: np.random.Generator) -> np.ndarray:
    """Readings at random depths, some missing."""
    y, _ = _grid(rng)
    depth = rng.uniform(0.5, 2.0, y.shape)
    return np.where(rng.uniform(0, 1, y.shape) < rng.uniform(0, 0.3), 0.0, depth)


def ramp(rng: np.random.Generator) -> np.ndarray:
    """A tilted plane (a floor or a wall seen at an angle), slightly noisy."""
    y, x = _grid(rng)
    a, b = rng.normal(0, 1, 2)
    return 2.0 + 0.5 * (a * y + b * x) + rng.normal(0, 0.01, y.shape)


def block(rng: np.random.Generator) -> np.ndarray:
    """A box standing in front of a wall."""
    y, x = _grid(rng)
    top, left = rng.uniform(0.05, 0.5, 2)
    bottom, right = top + rng.uniform(0.2, 0.5), left + rng.uniform(0.2, 0.5)
    inside = (y > top) & (y < bottom) & (x > left) & (x < right)
    return np.where(inside, 1.5, 2.0) + rng.normal(0, 0.005, y.shape)


def no_readings(rng: np.random.Generator) -> np.ndarray:
    """A depth map whose every reading is missing: refused, never classified."""
    y, _ = _grid(rng)
    return np.zeros(y.shape)


DEPTH_MAPS = JunkKinds({"blobs": blobs, "noise": depth_noise, "ramp": ramp, "block": block,
                        "no readings": no_readings}, person_files.write_depth)
