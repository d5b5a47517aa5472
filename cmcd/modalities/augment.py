"""Batched training augmentations, one random draw per sample, on whatever device the batch is.

Each function takes a float batch (N, C, H, W) and a torch.Generator on the batch's device, and
returns a new batch; nothing loops over samples, so the same code runs on a GPU at full speed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, generator: torch.Generator, low: float, high: float, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def random_affine(x: torch.Tensor, generator: torch.Generator, degrees: float = 10.0,
                  scale: tuple[float, float] = (0.85, 1.1), shift: float = 0.1,
                  fill: float = 0.0) -> torch.Tensor:
    """Per-sample rotation, zoom and translation (shift as a fraction of the image size)."""
    n, device = x.shape[0], x.device
    angle = _uniform(n, generator, -math.radians(degrees), math.radians(degrees), device)
    zoom = _uniform(n, generator, *scale, device)
    tx, ty = (_uniform(n, generator, -2 * shift, 2 * shift, device) for _ in range(2))
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill


def colour_jitter(x: torch.Tensor, generator: torch.Generator, strength: float = 0.4,
                  grey_probability: float = 0.2) -> torch.Tensor:
    """Per-sample brightness, contrast, saturation and channel order changes, sometimes grey."""
    n, device = x.shape[0], x.device
    shape = (n, 1, 1, 1)
    brightness = _uniform(n, generator, 1 - strength, 1 + strength, device).view(shape)
    contrast = _uniform(n, generator, 1 - strength, 1 + strength, device).view(shape)
    saturation = _uniform(n, generator, 1 - strength, 1 + strength, device).view(shape)
    grey = x.mean(dim=1, keepdim=True)
    x = grey + (x - grey) * saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean * brightness
    order = torch.rand(n, 3, generator=generator, device=device).argsort(dim=1)
    x = torch.gather(x, 1, order[:, :, None, None].expand_as(x))
    to_grey = torch.rand(n, generator=generator, device=device).view(shape) < grey_probability
    return torch.where(to_grey, x.mean(dim=1, keepdim=True).expand_as(x), x).clamp(0, 1)


def random_erase(x: torch.Tensor, generator: torch.Generator, max_fraction: float = 0.25,
                 value: float = 0.0) -> torch.Tensor:
    """Blank one random rectangle per sample (up to max_fraction of each side squared)."""
    n, _, h, w = x.shape
    device = x.device
    side = torch.sqrt(_uniform(n, generator, 0.0, max_fraction, device))
    height, width = (side * h).round(), (side * w).round()
    top = torch.rand(n, generator=generator, device=device) * (h - height + 1)
    left = torch.rand(n, generator=generator, device=device) * (w - width + 1)
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    inside = ((rows >= top.floor().view(-1, 1, 1)) & (rows < (top.floor() + height).view(-1, 1, 1))
              & (cols >= left.floor().view(-1, 1, 1)) & (cols < (left.floor() + width).view(-1, 1, 1)))
    return x.masked_fill(inside[:, None], value)


def spec_augment(x: torch.Tensor, generator: torch.Generator, max_freq: int = 6,
                 max_time: int = 8) -> torch.Tensor:
    """SpecAugment on (N, 1, mels, frames): one frequency band and one time span masked per sample."""
    n, _, mels, frames = x.shape
    device = x.device

    def band(length: int, max_width: int) -> torch.Tensor:
        width = torch.randint(0, max_width + 1, (n,), generator=generator, device=device)
        start = (torch.rand(n, generator=generator, device=device) * (length - width + 1)).floor()
        positions = torch.arange(length, device=device).view(1, -1)
        return (positions >= start.view(-1, 1)) & (positions < (start + width).view(-1, 1))

    masked = band(mels, max_freq)[:, None, :, None] | band(frames, max_time)[:, None, None, :]
    fill = x.mean(dim=(1, 2, 3), keepdim=True)
    return torch.where(masked, fill, x)


def trim_quiet_edges(x: torch.Tensor, generator: torch.Generator, frame_db: torch.Tensor, silence: float,
                     probability: float = 0.5,
                     threshold_db: tuple[float, float] = (-35.0, -15.0)) -> torch.Tensor:
    """Trim each spectrogram (N, 1, bins, frames) as a recording's reader trims silence, for a
    random `probability` of the samples: the frames before the first and after the last frame
    louder than a random threshold (dB below the sample's loudest frame, `frame_db` (N, frames))
    become `silence`, the value of a frame of digital silence."""
    n, frames = frame_db.shape
    device = x.device
    threshold = _uniform(n, generator, *threshold_db, device)
    loud = frame_db - frame_db.max(dim=1, keepdim=True).values > threshold[:, None]
    positions = torch.arange(frames, device=device)
    first = torch.where(loud, positions, frames).min(dim=1).values
    last = torch.where(loud, positions, -1).max(dim=1).values
    kept = (positions >= first[:, None]) & (positions <= last[:, None])
    trimmed = torch.rand(n, generator=generator, device=device) < probability
    kept = kept | ~trimmed[:, None]
    return torch.where(kept[:, None, None, :], x, torch.full_like(x, silence))


def time_shift(x: torch.Tensor, generator: torch.Generator, max_frames: int = 4) -> torch.Tensor:
    """Shift each spectrogram along time by up to max_frames, edge frames repeated."""
    shift = _uniform(x.shape[0], generator, -max_frames, max_frames, x.device)
    theta = torch.zeros(x.shape[0], 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = shift * 2 / x.shape[-1]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment_rgb(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SimCLR-style views of source photos in [0, 1]."""
    return colour_jitter(random_affine(x, generator), generator)
