"""Target modality: a hand-drawn line drawing of the same shape, dark ink on white paper.

Digits are drawn along their skeleton (slanted, stretched and tilted as hands do), clothing along
its outline and strong inner edges. Lines are one-pixel paths (Zhang-Suen thinning, batched), which
then overshoot or stop short at their ends, lose pieces (stroke dropout), wobble, and are inked at
twice the resolution with people's pens, from a fine line to a fat marker, sometimes drawn small
(few pixels). Each drawing is then read the way the app reads a person's: cropped to its ink,
centred in the glyph box, thinned and redrawn with one pen (`crop_to_glyph_box`, `redraw`).
`gap` in [0, 1] strengthens dropout, wobble and stopping short. `without` leaves out some of the
people-like INGREDIENTS (for the ablation of `cmcd bench ingredients`): "pens" draws every item with
the reader's one pen, "hand" skips the slant, aspect and tilt, "coarsen" never draws small.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cmcd.data import geometry, rng

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
    """8-bit code of each pixel's occupied neighbours (bit i set when neighbour _RING[i] is ink).
    Eight shifted ORs: on the CPU several times faster than one 3x3 convolution."""
    padded = F.pad((mask > 0).to(torch.uint8), (1, 1, 1, 1))
    h, w = mask.shape[-2:]
    codes = torch.zeros(mask.shape, dtype=torch.uint8)
    for bit, (dy, dx) in enumerate(_RING):
        codes |= padded[:, :, 1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w] << bit
    return codes


def thin(mask: torch.Tensor, max_iterations: int = 40) -> torch.Tensor:
    """Zhang-Suen thinning of a (N, 1, H, W) binary float mask, all images at once."""
    mask = mask.clone()
    # An image that an iteration left unchanged is thin: the next iterations only work on the
    # others (the same result, about 3 times faster on sketches, whose images finish unevenly).
    active = torch.arange(mask.shape[0])
    for _ in range(max_iterations):
        if active.numel() == 0:
            break
        part = mask[active]
        changed = torch.zeros(active.numel(), dtype=torch.bool)
        for table in _REMOVABLE:
            remove = (part > 0) & table[_neighbour_codes(part).long()]
            removed = remove.flatten(1).any(1)
            if removed.any():
                part = part.masked_fill(remove, 0.0)
                changed |= removed
        mask[active] = part
        active = active[changed]
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


# A person's drawing as the app reads it (cmcd.modalities.sketch.read_drawing): cropped to its ink,
# centred in a GLYPH_BOX square of the CANVAS, thinned and redrawn with one pen of PEN_RADIUS.
CANVAS = 32
GLYPH_BOX = 22  # training glyphs span about 20-22 of the 32 pixels
PEN_RADIUS = 1.8  # pixels at twice the resolution
PAPER = 0.97

# People's pens, as a radius in pixels at twice the resolution, where a glyph is ~40 pixels tall:
# from a fine pen (a 1-pixel line) to a fat marker (a sixth of the digit's height).
PEN_RADII = (0.6, 1.0, 1.4, 1.8, 2.2, 2.6)
# A digit drawn small on the canvas has few pixels: drawn at this share of the glyph's size.
RESOLUTIONS = (1.0, 1.0, 0.75, 0.5)
INGREDIENTS = ("pens", "hand", "coarsen")  # what `without` may leave out


def redraw(fine: torch.Tensor) -> torch.Tensor:
    """Ink (N, 1, 2 CANVAS, 2 CANVAS) in [0, 1], centred in the glyph box -> (N, 1, CANVAS, CANVAS)
    dark ink on paper: its skeleton drawn again with the pen of PEN_RADIUS."""
    path = thin((fine > 0.4).float())
    return (PAPER * (1 - F.avg_pool2d(pen_ink(path, PEN_RADIUS), 2))).float()


def crop_to_glyph_box(ink: torch.Tensor) -> torch.Tensor:
    """Each drawing's ink (N, 1, H, W) cropped to its strokes' bounding square, centred in the
    glyph box of a (N, 1, 2 CANVAS, 2 CANVAS) canvas, wherever and however large it was drawn.
    Bilinear sampling: meant for shrinking by less than 1.5 (read_drawing shrinks large drawings
    by max pooling first)."""
    n, _, h, w = ink.shape
    strokes = ink[:, 0] > 0.3
    rows, cols = strokes.any(2).float(), strokes.any(1).float()
    top, left = rows.argmax(1), cols.argmax(1)
    bottom, right = h - rows.flip(1).argmax(1), w - cols.flip(1).argmax(1)
    side = torch.maximum(bottom - top, right - left).clamp(min=1).float()
    centre_y, centre_x = (top + bottom).float() / 2, (left + right).float() / 2
    scale = side / (2 * GLYPH_BOX)  # input pixels per output pixel
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * 2 * CANVAS / w
    theta[:, 1, 1] = scale * 2 * CANVAS / h
    theta[:, 0, 2] = 2 * centre_x / w - 1
    theta[:, 1, 2] = 2 * centre_y / h - 1
    grid = F.affine_grid(theta, [n, 1, 2 * CANVAS, 2 * CANVAS], align_corners=False)
    return F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _hand(glyph: torch.Tensor, ids, seed: int) -> torch.Tensor:
    """People's slant, aspect and tilt: one random affine map per item (shrunk a little, so a
    slanted glyph stays on the canvas; the reader crops it anyway)."""
    u = rng.uniform(ids, seed, "sketch/hand", (3,)) * 2 - 1
    slant, aspect, tilt = 0.35 * u[:, 0], torch.exp(0.25 * u[:, 1]), 0.12 * u[:, 2]
    theta = torch.zeros(len(glyph), 2, 3)
    theta[:, 0, 0] = torch.cos(tilt) / (0.9 * aspect)
    theta[:, 0, 1] = -torch.sin(tilt) / 0.9 + slant
    theta[:, 1, 0] = torch.sin(tilt) / 0.9
    theta[:, 1, 1] = torch.cos(tilt) / 0.9
    grid = F.affine_grid(theta, list(glyph.shape), align_corners=False)
    return F.grid_sample(glyph, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _people_pens(path: torch.Tensor, ids, seed: int) -> torch.Tensor:
    """Ink of each item's pen, a radius between two of PEN_RADII mixed by a random weight."""
    inks = _pens(path, PEN_RADII)
    draw = rng.uniform(ids, seed, "sketch/pen-width") * (len(PEN_RADII) - 1)
    lower = draw.floor().long().clamp(max=len(PEN_RADII) - 2)
    weight = (draw - lower).view(-1, 1, 1)
    rows = torch.arange(len(path))
    return ((1 - weight) * inks[rows, lower] + weight * inks[rows, lower + 1])[:, None]


def _coarsen(ink: torch.Tensor, ids, seed: int) -> torch.Tensor:
    """Items drawn small on the canvas have few pixels: pooled down to a share of the size (the
    darkest pixel of each cell, as a fine line survives on a screen) and read back up."""
    choice = (rng.uniform(ids, seed, "sketch/resolution") * len(RESOLUTIONS)).long()
    size = ink.shape[-1]
    out = ink.clone()
    for level, share in enumerate(RESOLUTIONS):
        rows = choice == level
        if share == 1.0 or not rows.any():
            continue
        small = F.adaptive_max_pool2d(ink[rows], round(size * share))
        out[rows] = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    return out


def render_sketch(images: np.ndarray, ids, seed: int, gap: float, strokes: str,
                  without: tuple[str, ...] = ()) -> torch.Tensor:
    """(N, 28, 28) uint8 glyphs -> (N, 1, 32, 32) uint8 sketches, dark ink on white paper, as the
    app reads a person's drawing (`redraw` after `crop_to_glyph_box`); `without`: INGREDIENTS left out."""
    unknown = set(without) - set(INGREDIENTS)
    if unknown:
        raise ValueError(f"unknown sketch ingredients {sorted(unknown)}; valid: {', '.join(INGREDIENTS)}")
    glyph = geometry.jitter(geometry.to_canvas(images), ids, seed, "sketch/jitter")
    if strokes == "skeleton" and "hand" not in without:
        glyph = _hand(glyph, ids, seed)
    path = digit_strokes(glyph) if strokes == "skeleton" else outline_strokes(glyph)

    ends = rng.uniform(ids, seed, "sketch/ends", (2,))
    path = trim_ends(path, (ends[:, 0] * (1 + 4 * gap) * 2.5).long())
    path = extend_ends(path, (ends[:, 1] * 5).long())
    keep = geometry.smooth_noise(ids, seed, "sketch/dropout", cells=6, size=path.shape[-1])
    path = path * (keep >= 0.45 * gap).float()

    amplitude = 1.5 + 6.0 * gap * rng.uniform(ids, seed, "sketch/wobble-amount")
    path = (_wobble(path, ids, seed, amplitude) > 0.2).float()  # resampling fades the line
    ink = pen_ink(path, PEN_RADIUS) if "pens" in without else _people_pens(path, ids, seed)
    if "coarsen" not in without:
        ink = _coarsen(ink, ids, seed)
    blank = ink.flatten(1).amax(1) <= 0.3  # everything dropped: keep the paper blank
    sketches = redraw(crop_to_glyph_box(ink))
    sketches[blank] = PAPER
    return geometry.to_uint8(sketches)
