"""Target modality: a hand-drawn line drawing of the same shape, dark ink on white paper.

Digits are drawn along their skeleton, clothing along its outline and strong inner edges. Lines
are one-pixel paths (Zhang-Suen thinning, batched), which then overshoot or stop short at their
ends, lose pieces (stroke dropout), wobble, and are inked with a round pen whose width varies
along the stroke, at twice the resolution and averaged down, the way a mouse or finger drawing on
a sketch pad looks. `gap` in [0, 1] strengthens dropout, wobble and pen irregularity.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cmcd.data import rng
from cmcd.data.renderers import geometry

# Neighbour offsets P2..P9 of Zhang-Suen, clockwise from north; bit i of a pixel's code is P(i+2).
_RING = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def _removable(step: int) -> torch.Tensor:
    """Lookup table over the 256 neighbourhood codes: may a pixel go in this Zhang-Suen step?"""
    table = torch.zeros(256, dtype=torch.bool)
    for code in range(256):
        p = [(code >> bit) & 1 for bit in range(8)]
        count = sum(p)
        transitions = sum((1 - p[i]) * p[(i + 1) % 8] for i in range(8))
        if step == 0:
            clear = p[0] * p[2] * p[4] == 0 and p[2] * p[4] * p[6] == 0
        else:
            clear = p[0] * p[2] * p[6] == 0 and p[0] * p[4] * p[6] == 0
        table[code] = 2 <= count <= 6 and transitions == 1 and clear
    return table


_REMOVABLE = (_removable(0), _removable(1))


def _neighbour_codes(mask: torch.Tensor) -> torch.Tensor:
    """8-bit code of each pixel's occupied neighbours (bit i set when neighbour _RING[i] is ink)."""
    padded = F.pad((mask > 0).to(torch.uint8), (1, 1, 1, 1))
    h, w = mask.shape[-2:]
    codes = torch.zeros(mask.shape, dtype=torch.uint8)
    for bit, (dy, dx) in enumerate(_RING):
        codes |= padded[:, :, 1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w] << bit
    return codes


def thin(mask: torch.Tensor, max_iterations: int = 40) -> torch.Tensor:
    """Zhang-Suen thinning of a (N, 1, H, W) binary float mask, all images at once."""
    mask = mask.clone()
    for _ in range(max_iterations):
        changed = False
        for table in _REMOVABLE:
            remove = (mask > 0) & table[_neighbour_codes(mask).long()]
            if remove.any():
                mask = mask.masked_fill(remove, 0.0)
                changed = True
        if not changed:
            break
    return mask


def _ends(path: torch.Tensor, steps: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Free ends (pixels with exactly one neighbour) of the images with steps > step:
    their (n, 0, y, x) positions and the bit of their one neighbour."""
    codes = _neighbour_codes(path)
    is_end = (path > 0) & (codes > 0) & ((codes & (codes - 1)) == 0)
    is_end &= (steps > step).view(-1, 1, 1, 1)
    where = torch.nonzero(is_end)
    return where, codes[is_end].long()


def _steps(steps: torch.Tensor) -> range:
    return range(int(steps.max()) if len(steps) else 0)


def trim_ends(path: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Stop short: remove `steps[i]` pixels from every free end of image i."""
    path = path.clone()
    for step in _steps(steps):
        where, _ = _ends(path, steps, step)
        path[tuple(where.T)] = 0.0
    return path


_OFFSET_OF_BIT = torch.zeros(129, 2, dtype=torch.long)
for _bit, _offset in enumerate(_RING):
    _OFFSET_OF_BIT[1 << _bit] = torch.tensor(_offset)


def extend_ends(path: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Overshoot: continue every free end of image i by `steps[i]` pixels in its own direction."""
    path = path.clone()
    h, w = path.shape[-2:]
    for step in _steps(steps):
        where, neighbour_bit = _ends(path, steps, step)
        # an end whose only neighbour lies at (dy, dx) grows one pixel at (-dy, -dx)
        grown = where.clone()
        grown[:, 2:] -= _OFFSET_OF_BIT[neighbour_bit]
        inside = (grown[:, 2] >= 0) & (grown[:, 2] < h) & (grown[:, 3] >= 0) & (grown[:, 3] < w)
        path[tuple(grown[inside].T)] = 1.0
    return path


def digit_strokes(glyph: torch.Tensor) -> torch.Tensor:
    fine = F.interpolate(glyph, scale_factor=2, mode="bilinear", align_corners=False)
    return thin((fine > 0.4).float())


def outline_strokes(glyph: torch.Tensor) -> torch.Tensor:
    """Silhouette outline plus strong inner edges (folds, collars, soles) of a clothing item,
    found at the glyph's resolution, then thinned at twice that."""
    silhouette = (glyph > 0.08).float()
    eroded = -F.max_pool2d(-silhouette, 3, stride=1, padding=1)
    dx, dy = geometry.gradients(geometry.gaussian_blur(glyph, 0.6))
    inner = ((dx**2 + dy**2).sqrt() > 0.14).float() * eroded
    edges = torch.maximum(silhouette - eroded, inner)
    return thin(F.interpolate(edges, scale_factor=2, mode="nearest"))


def _pens(path: torch.Tensor, radii: tuple[float, ...]) -> torch.Tensor:
    """Ink left by round pens of the given radii (pixels) dragged along a path, one channel each."""
    reach = int(np.ceil(max(radii))) + 1
    taps = torch.arange(-reach, reach + 1, dtype=torch.float32)
    distance = (taps[None, :] ** 2 + taps[:, None] ** 2).sqrt()
    discs = torch.stack([(radius + 0.5 - distance).clamp(0, 1) for radius in radii])[:, None]
    return F.conv2d(path, discs, padding=reach).clamp_(0, 1)


def pen_ink(path: torch.Tensor, radius: float) -> torch.Tensor:
    """Ink of one round pen of `radius` pixels along a path (N, 1, H, W)."""
    return _pens(path, (radius,))


def _wobble(path: torch.Tensor, ids, seed: int, amplitude: torch.Tensor) -> torch.Tensor:
    size = path.shape[-1]
    field = geometry.smooth_noise(ids, seed, "sketch/wobble", cells=5, size=size, channels=2)
    offset = (field - 0.5) * 2 * amplitude.view(-1, 1, 1, 1) * (2.0 / size)
    x, y = geometry.pixel_coordinates(size)
    grid = torch.cat([x, y], dim=1) + offset
    return F.grid_sample(path, grid.permute(0, 2, 3, 1), mode="bilinear", align_corners=True)


def render_sketch(images: np.ndarray, ids, seed: int, gap: float, strokes: str) -> torch.Tensor:
    """(N, 28, 28) uint8 glyphs -> (N, 1, 32, 32) uint8 sketches, dark ink on white paper."""
    glyph = geometry.jitter(geometry.to_canvas(images), ids, seed, "sketch/jitter")
    path = digit_strokes(glyph) if strokes == "skeleton" else outline_strokes(glyph)

    ends = rng.uniform(ids, seed, "sketch/ends", (2,))
    path = trim_ends(path, (ends[:, 0] * (1 + 4 * gap) * 2.5).long())
    path = extend_ends(path, (ends[:, 1] * 5).long())
    keep = geometry.smooth_noise(ids, seed, "sketch/dropout", cells=6, size=path.shape[-1])
    path = path * (keep >= 0.45 * gap).float()

    amplitude = 1.5 + 6.0 * gap * rng.uniform(ids, seed, "sketch/wobble-amount")
    path = _wobble(path, ids, seed, amplitude)
    pen = rng.uniform(ids, seed, "sketch/pen", (2,))
    thin_ink, thick_ink = _pens(path, (1.2, 2.6)).split(1, dim=1)
    pressure = geometry.smooth_noise(ids, seed, "sketch/pressure", cells=4, size=path.shape[-1])
    width_mix = (pen[:, 0].view(-1, 1, 1, 1) * (1 - gap) + pressure * gap).clamp(0, 1)
    ink = F.avg_pool2d(thin_ink + width_mix * (thick_ink - thin_ink), 2)
    darkness = 0.75 + 0.25 * pen[:, 1].view(-1, 1, 1, 1)
    paper = 0.97 - 0.03 * geometry.smooth_noise(ids, seed, "sketch/paper", cells=8)
    return geometry.to_uint8(paper * (1 - darkness * ink))
