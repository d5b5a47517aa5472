"""Image operations the renderers share, each batched over (N, C, H, W) tensors."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from cmcd.data import rng

SIZE = 32


def to_canvas(images: np.ndarray) -> torch.Tensor:
    """28x28 uint8 glyphs -> (N, 1, 32, 32) floats in [0, 1], centred with a 2-pixel margin."""
    glyphs = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    return F.pad(glyphs[:, None], (2, 2, 2, 2))


def jitter(x: torch.Tensor, ids, seed: int, stream: str,
           degrees: float = 8.0, scale: float = 0.08, shift: float = 0.06) -> torch.Tensor:
    """A small random rotation, scaling and translation per item (shift as a fraction of size)."""
    params = rng.uniform(ids, seed, stream, (4,)) * 2 - 1
    angle = params[:, 0] * math.radians(degrees)
    zoom = 1 + params[:, 1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([
        torch.stack([cos, -sin, params[:, 2] * shift * 2], dim=1),
        torch.stack([sin, cos, params[:, 3] * shift * 2], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def smooth_noise(ids, seed: int, stream: str, cells: int = 4, size: int = SIZE,
                 channels: int = 1) -> torch.Tensor:
    """Low-frequency noise in [0, 1]: a cells x cells random grid upsampled smoothly."""
    coarse = rng.uniform(ids, seed, stream, (channels, cells + 1, cells + 1))
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
    return field.clamp_(0.0, 1.0)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.dtype)
    channels = x.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), horizontal, groups=channels)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), vertical, groups=channels)


def height_map(glyph: torch.Tensor) -> torch.Tensor:
    """The glyph as a rounded relief in [0, 1]: strokes become ridges."""
    relief = gaussian_blur(glyph, sigma=1.0)
    peak = relief.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return relief / peak


def gradients(height: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences (d/dx, d/dy) with replicated borders."""
    padded = F.pad(height, (1, 1, 1, 1), mode="replicate")
    dx = (padded[:, :, 1:-1, 2:] - padded[:, :, 1:-1, :-2]) / 2
    dy = (padded[:, :, 2:, 1:-1] - padded[:, :, :-2, 1:-1]) / 2
    return dx, dy


def pixel_coordinates(size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y in [-1, 1] as (1, 1, size, size) tensors."""
    axis = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return x[None, None], y[None, None]


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round_().to(torch.uint8)
