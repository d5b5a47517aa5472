"""Target modality: the relief as a depth camera sees it.

Each pixel holds the distance to the camera in (0, 1] (larger is farther), 0 where the sensor gave
no reading. The glyph stands out of a tilted background plane; the sensor adds noise that grows
with distance, quantises, and drops readings in blobs and along depth edges, like a structured-
light camera. `gap` in [0, 1] strengthens noise, holes and edge dropout.
"""

from __future__ import annotations

import numpy as np
import torch

from cmcd.data import geometry, rng

QUANTUM = 1 / 512  # the sensor's depth resolution
JITTER_STREAM = "depth/jitter"  # the random stream of the depth map's affine jitter


def _scene_depth(height: torch.Tensor, ids, seed: int) -> torch.Tensor:
    p = rng.uniform(ids, seed, "depth/scene", (4,))
    plane = (0.65 + 0.2 * p[:, 0]).view(-1, 1, 1, 1)
    tilt_x = (0.16 * p[:, 1] - 0.08).view(-1, 1, 1, 1)
    tilt_y = (0.16 * p[:, 2] - 0.08).view(-1, 1, 1, 1)
    relief = (0.2 + 0.15 * p[:, 3]).view(-1, 1, 1, 1)
    x, y = geometry.pixel_coordinates()
    return plane + tilt_x * x + tilt_y * y - relief * height


def _invalid(depth: torch.Tensor, ids, seed: int, gap: float) -> torch.Tensor:
    """Where the sensor returns nothing: random blobs and steep depth edges."""
    blobs = geometry.smooth_noise(ids, seed, "depth/holes", cells=7) < 0.02 + 0.16 * gap
    dx, dy = geometry.gradients(depth)
    steep = (dx.abs() + dy.abs()) > 0.07
    edge_drop = rng.uniform(ids, seed, "depth/edge-drop", (1, 32, 32)) < 0.05 + 0.45 * gap
    speckle = rng.uniform(ids, seed, "depth/speckle", (1, 32, 32)) < 0.003 + 0.04 * gap
    return blobs | (steep & edge_drop) | speckle


def render_depth(images: np.ndarray, ids, seed: int, gap: float) -> torch.Tensor:
    """(N, 28, 28) uint8 glyphs -> (N, 1, 32, 32) float32 depth maps, 0 = no reading."""
    glyph = geometry.jitter(geometry.to_canvas(images), ids, seed, JITTER_STREAM)
    depth = _scene_depth(geometry.height_map(glyph), ids, seed)
    noise_scale = (0.004 + 0.05 * gap) * (depth / 0.7) ** 2
    noisy = depth + noise_scale * rng.normal(ids, seed, "depth/noise", (1, 32, 32))
    noisy = (noisy / QUANTUM).round() * QUANTUM
    noisy = noisy.clamp(QUANTUM, 1.0)
    return noisy.masked_fill(_invalid(depth, ids, seed, gap), 0.0)
