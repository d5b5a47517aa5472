"""The source modality: a photo-like picture of the glyph as a 3D relief.

Lambertian shading plus a little specular light from a random direction, a random object colour,
a textured background of another colour, small affine jitter and sensor noise.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cmcd.data import geometry, rng

RELIEF_DEPTH = 4.0  # how strongly the height map bends surface normals
JITTER_STREAM = "rgb/jitter"  # the random stream of the photo's affine jitter


def _hsv_to_rgb(hue: torch.Tensor, sat: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
    """(N,) tensors in [0, 1] -> (N, 3, 1, 1) RGB."""
    k = torch.stack([(5 + hue * 6) % 6, (3 + hue * 6) % 6, (1 + hue * 6) % 6], dim=1)
    channel = val[:, None] - val[:, None] * sat[:, None] * (torch.minimum(k, 4 - k).clamp(0, 1))
    return channel[:, :, None, None]


def _light_directions(ids, seed: int) -> torch.Tensor:
    params = rng.uniform(ids, seed, "rgb/light", (2,))
    azimuth = params[:, 0] * 2 * math.pi
    elevation = math.radians(30) + params[:, 1] * math.radians(40)
    light = torch.stack([torch.cos(azimuth) * torch.cos(elevation),
                         torch.sin(azimuth) * torch.cos(elevation),
                         torch.sin(elevation)], dim=1)
    return light[:, :, None, None]


def _colours(ids, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Object and background colours with a clear difference in brightness."""
    p = rng.uniform(ids, seed, "rgb/colour", (7,))
    bright_object = p[:, 5] < 0.5
    object_value = torch.where(bright_object, 0.65 + 0.35 * p[:, 2], 0.25 + 0.2 * p[:, 2])
    background_value = torch.where(bright_object, 0.2 + 0.25 * p[:, 4], 0.7 + 0.3 * p[:, 4])
    obj = _hsv_to_rgb(p[:, 0], 0.35 + 0.6 * p[:, 1], object_value)
    background = _hsv_to_rgb(p[:, 3], 0.1 + 0.5 * p[:, 6], background_value)
    return obj, background


def _surface_normals(height: torch.Tensor) -> torch.Tensor:
    dx, dy = geometry.gradients(height * RELIEF_DEPTH)
    normal = torch.cat([-dx, -dy, torch.ones_like(dx)], dim=1)
    return normal / normal.norm(dim=1, keepdim=True)


def render_rgb(images: np.ndarray, ids, seed: int, jitter_stream: str = JITTER_STREAM) -> torch.Tensor:
    """(N, 28, 28) uint8 glyphs -> (N, 3, 32, 32) uint8 photo-like renders. Another modality's
    `jitter_stream` draws the photo in that modality's geometry (a registered pair)."""
    glyph = geometry.jitter(geometry.to_canvas(images), ids, seed, jitter_stream)
    height = geometry.height_map(glyph)
    normals = _surface_normals(height)
    light = _light_directions(ids, seed)
    diffuse = (normals * light).sum(dim=1, keepdim=True).clamp_min(0)
    reflected_z = 2 * diffuse * normals[:, 2:3] - light[:, 2:3]  # viewer looks down the z axis
    specular = 0.35 * reflected_z.clamp_min(0) ** 12

    obj, background = _colours(ids, seed)
    albedo = obj * (0.55 + 0.45 * glyph)  # texture of the item (fashion) survives the relief
    lit_object = albedo * (0.25 + 0.75 * diffuse) + specular
    texture = geometry.smooth_noise(ids, seed, "rgb/texture", cells=6, channels=1)
    grain = geometry.smooth_noise(ids, seed, "rgb/grain", cells=16, channels=1)
    lit_background = background * (0.8 + 0.25 * texture + 0.15 * grain) * (0.35 + 0.65 * light[:, 2:3])

    coverage = (glyph * 2.5).clamp(0, 1)
    picture = coverage * lit_object + (1 - coverage) * lit_background
    picture = picture + 0.015 * rng.normal(ids, seed, "rgb/noise", (3, 32, 32))
    return geometry.to_uint8(picture)
