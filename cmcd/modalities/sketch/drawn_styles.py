"""Digits drawn in styles other than the training sketches, for measuring how a sketch student
copes with the drawings people really make (`cmcd bench inputs`).

Two families. From real handwriting (MNIST test items, never seen in training): the glyph put on
a sketch-pad canvas with a fat marker, slanted, small and off-centre, wobbling, in light pencil,
or as chalk on a blackboard. From pen strokes (cmcd.modalities.sketch.strokes, several common shapes
of each digit): a thin pen or a fat marker, at any canvas size, slant and place; and the ways many
people write that MNIST's writers seldom did (PEOPLES_WAYS: strokes.PEOPLES_SHAPES with a pen or a
marker, digits copied from type in fonts no training item uses). Each drawing is greyscale
(H, W) in [0, 1] as the sketch pad sends it; nothing here is used in training or calibration.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from cmcd.modalities.sketch import people_digits, strokes


def _on_canvas(glyph: np.ndarray, rng: np.random.Generator, canvas: tuple[int, int],
               size: float, centre: tuple[float, float], shear: float = 0.0) -> np.ndarray:
    """A 28x28 grey glyph (0 paper .. 255 ink) as ink in [0, 1] on a canvas (H, W): the glyph's
    height `size` of the canvas's smaller side, centred at `centre` (shares), sheared by `shear`."""
    height, width = canvas
    side = max(8, int(size * min(height, width)))
    big = np.asarray(Image.fromarray(glyph).resize((side, side), Image.BILINEAR), np.float32) / 255
    if shear:
        big = ndimage.affine_transform(big, [[1, 0], [shear, 1]], offset=(0, -shear * side / 2), order=1)
    ink = np.zeros(canvas, np.float32)
    top = int(np.clip(centre[0] * height - side / 2, 0, height - side))
    left = int(np.clip(centre[1] * width - side / 2, 0, width - side))
    ink[top: top + side, left: left + side] = big
    return ink


def _pad(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(200, 480)), int(rng.integers(200, 480))


def fat_marker(glyph, rng):
    """Thick strokes: the glyph grown by a round marker."""
    ink = _on_canvas(glyph, rng, (280, 280), rng.uniform(0.6, 0.8), (0.5, 0.5)) > 0.5
    radius = int(rng.integers(6, 14))
    disc = np.hypot(*np.mgrid[-radius:radius + 1, -radius:radius + 1]) <= radius
    return 1.0 - ndimage.binary_dilation(ink, disc).astype(np.float32)


def slanted(glyph, rng):
    """Leaning left or right, as fast writers do."""
    shear = rng.choice([-1, 1]) * rng.uniform(0.25, 0.5)
    return 1.0 - _on_canvas(glyph, rng, _pad(rng), rng.uniform(0.5, 0.7), (0.5, 0.5), shear)


def small_off_centre(glyph, rng):
    """Small, in a corner of a big canvas, as on a pad drawn on in passing."""
    centre = tuple(rng.choice([0.2, 0.8], 2) + rng.uniform(-0.05, 0.05, 2))
    return 1.0 - _on_canvas(glyph, rng, (480, int(rng.integers(320, 640))), rng.uniform(0.15, 0.3), centre)


def wobbly(glyph, rng):
    """A shaky hand: the glyph smoothly warped."""
    ink = _on_canvas(glyph, rng, (280, 280), 0.7, (0.5, 0.5))
    grid = np.mgrid[0:280, 0:280].astype(np.float32)
    warp = [ndimage.gaussian_filter(rng.normal(0, 1, (280, 280)), 25) for _ in range(2)]
    warp = [w / np.abs(w).max() * rng.uniform(6, 12) for w in warp]
    return 1.0 - ndimage.map_coordinates(ink, [grid[0] + warp[0], grid[1] + warp[1]], order=1)


def pencil(glyph, rng):
    """Light grey pencil on off-white, grainy paper."""
    ink = _on_canvas(glyph, rng, _pad(rng), rng.uniform(0.5, 0.8), tuple(rng.uniform(0.4, 0.6, 2)))
    paper = rng.uniform(0.85, 0.97) + rng.normal(0, 0.02, ink.shape)
    return np.clip(paper - rng.uniform(0.35, 0.6) * ink, 0, 1).astype(np.float32)


def chalk(glyph, rng):
    """Light strokes on a dark board (the reader must flip the polarity)."""
    return _on_canvas(glyph, rng, _pad(rng), rng.uniform(0.5, 0.8), (0.5, 0.5))


def _stroke_digit(label: int, rng: np.random.Generator, pen_width: tuple[float, float],
                  shapes: list | None = None) -> np.ndarray:
    shapes = shapes or strokes.DIGITS[str(label)]
    shape = shapes[int(rng.integers(len(shapes)))]
    canvas = _pad(rng)
    pen = strokes.Pen(canvas=canvas, size=rng.uniform(0.5, 0.85), centre=tuple(rng.uniform(0.4, 0.6, 2)),
                      width=rng.uniform(*pen_width) * min(canvas) / 280, slant=rng.uniform(-0.25, 0.25),
                      wobble=rng.uniform(0, 0.02))
    return strokes.draw(shape, pen, rng)


def _peoples_shape(label: int, rng: np.random.Generator, pen_width: tuple[float, float]) -> np.ndarray:
    shapes = strokes.PEOPLES_SHAPES.get(str(label)) or strokes.DIGITS[str(label)]
    return _stroke_digit(label, rng, pen_width, shapes)


def peoples_shapes_pen(label, rng):
    """The shapes many people use that MNIST's writers seldom did (a 1 with a flag and a foot,
    7 with a hook or a bar, open and closed 4, 6 and 9 with small, large or open loops), thin pen."""
    return _peoples_shape(label, rng, (1.5, 6))


def peoples_shapes_marker(label, rng):
    """The same shapes with a fat marker."""
    return _peoples_shape(label, rng, (14, 30))


def printed_type(label, rng):
    """A digit copied from type in a font no training item was drawn in (people_digits.TRAINING_FONTS
    are DejaVu): STIX or Computer Modern, serif and sans, thin to bold, on any canvas."""
    font = MEASURING_FONTS[int(rng.integers(len(MEASURING_FONTS)))]
    ink = people_digits.printed(label, font, int(rng.choice([-1, 0, 1, 2, 3])))
    ink = ink[np.ix_(*(np.flatnonzero(ink.max(axis) > 0.1) for axis in (1, 0)))]
    canvas = _pad(rng)
    glyph = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)), np.uint8)
    size = rng.uniform(0.4, 0.8)
    side = int(size * min(canvas))
    scale = side / max(glyph.shape)
    resized = Image.fromarray(glyph).resize((max(1, int(glyph.shape[1] * scale)), side), Image.BILINEAR)
    paper = np.ones(canvas, np.float32)
    top, left = (np.array(canvas) - np.array(resized.size[::-1])) // 2
    paper[top: top + resized.size[1], left: left + resized.size[0]] -= np.asarray(resized, np.float32) / 255
    return paper


def thin_pen(label, rng):
    """A digit of pen strokes drawn with a thin pen."""
    return _stroke_digit(label, rng, (1.5, 4))


def stroke_marker(label, rng):
    """A digit of pen strokes drawn with a fat marker."""
    return _stroke_digit(label, rng, (18, 32))


# name -> (what it draws from: "glyph" (a 28x28 MNIST item) or "label"), the style
STYLES: dict[str, tuple[str, Callable]] = {
    "fat marker": ("glyph", fat_marker), "slanted": ("glyph", slanted),
    "small and off-centre": ("glyph", small_off_centre), "wobbly": ("glyph", wobbly),
    "pencil": ("glyph", pencil), "chalk on a board": ("glyph", chalk),
    "thin pen strokes": ("label", thin_pen), "fat marker strokes": ("label", stroke_marker),
    "people's shapes, pen": ("label", peoples_shapes_pen),
    "people's shapes, marker": ("label", peoples_shapes_marker),
    "printed type": ("label", printed_type),
}
# The ways of writing that the digits dataset's added items teach (cmcd.modalities.sketch.people_digits)
PEOPLES_WAYS = ("people's shapes, pen", "people's shapes, marker", "printed type")
MEASURING_FONTS = ("STIXGeneral.ttf", "STIXGeneralBol.ttf", "cmr10.ttf", "cmss10.ttf")


def draw_in_style(style: str, glyph: np.ndarray, label: int, seed: int, index: int) -> np.ndarray:
    """Item `index` drawn in `style`: greyscale (H, W) in [0, 1] (the same for the same seed)."""
    source, make = STYLES[style]
    rng = np.random.default_rng([seed, list(STYLES).index(style), index])
    return make(glyph, rng) if source == "glyph" else make(label, rng)


def read_in_every_style(read: Callable[[np.ndarray], torch.Tensor], glyphs: np.ndarray,
                        labels: np.ndarray, seed: int) -> dict[str, torch.Tensor]:
    """Every style's drawings of the items (glyphs (N, 28, 28), labels (N,); item i has index i),
    each read by `read` (a modality's drawing reader): {style: (N, ...) samples}."""
    return {style: torch.stack([read(draw_in_style(style, glyph, int(label), seed, index))
                                for index, (glyph, label) in enumerate(zip(glyphs, labels, strict=True))])
            for style in STYLES}
