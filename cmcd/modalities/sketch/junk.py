"""Sketch-pad junk for "not sure": scribbles, boxes, letters, dots, hatching and a blank canvas."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from cmcd.data import person_files
from cmcd.data.junk import JunkKinds
from cmcd.modalities.sketch import strokes

# --- pictures: a sketch pad's canvas, greyscale (H, W) in [0, 1], dark ink on white ---------------

def _canvas(rng: np.random.Generator) -> tuple[Image.Image, ImageDraw.ImageDraw, int]:
    """A white canvas of a random size and a pen width for it."""
    height, width = (int(v) for v in rng.integers(160, 480, 2))
    image = Image.new("L", (width, height), 255)
    return image, ImageDraw.Draw(image), int(rng.integers(3, max(4, min(height, width) // 12)))


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A random tangle: a pen wandering with momentum."""
    image, painter, pen = _canvas(rng)
    size = np.array(image.size, dtype=float)
    position, velocity = size * rng.uniform(0.4, 0.6, 2), rng.normal(0, 1, 2)
    points = []
    for _ in range(int(rng.integers(30, 120))):
        velocity = 0.8 * velocity + rng.normal(0, 1, 2)
        position = np.clip(position + size.min() / 40 * velocity, 5, size - 5)
        points.append(tuple(position))
    painter.line(points, fill=0, width=pen, joint="curve")
    return _grey(image)


def box(rng: np.random.Generator) -> np.ndarray:
    """A rectangle's outline, of any aspect, slightly rotated."""
    image, painter, pen = _canvas(rng)
    width, height = image.size
    half = np.array([width, height]) * rng.uniform(0.15, 0.4, 2)
    centre = np.array([width, height]) * rng.uniform(0.4, 0.6, 2)
    angle = np.radians(rng.uniform(-20, 20))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = [tuple(centre + rotation @ (half * sign)) for sign in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    painter.line(corners + corners[:1], fill=0, width=pen, joint="curve")
    return _grey(image)


def letter(rng: np.random.Generator) -> np.ndarray:
    """A capital letter that looks like no digit (L, T, X, H, ...), drawn by hand."""
    name = rng.choice(sorted(strokes.LETTERS))
    height, width = (int(v) for v in rng.integers(200, 480, 2))
    pen = strokes.Pen(canvas=(height, width), size=rng.uniform(0.5, 0.85),
                      centre=tuple(rng.uniform(0.4, 0.6, 2)), width=rng.uniform(3, 24),
                      slant=rng.uniform(-0.2, 0.2), wobble=rng.uniform(0, 0.03))
    return strokes.draw(strokes.LETTERS[str(name)], pen, rng)


def dots(rng: np.random.Generator) -> np.ndarray:
    """Specks all over the canvas, like noise."""
    image, painter, pen = _canvas(rng)
    width, height = image.size
    for x, y in rng.uniform(0, 1, (int(rng.integers(20, 200)), 2)) * (width, height):
        r = pen * rng.uniform(0.2, 0.6)
        painter.ellipse((x - r, y - r, x + r, y + r), fill=0)
    return _grey(image)


def hatching(rng: np.random.Generator) -> np.ndarray:
    """A few straight lines across the canvas."""
    image, painter, pen = _canvas(rng)
    size = np.array(image.size)
    for _ in range(int(rng.integers(3, 9))):
        start, end = rng.uniform(0, 1, 2) * size, rng.uniform(0, 1, 2) * size
        painter.line([tuple(start), tuple(end)], fill=0, width=pen)
    return _grey(image)


def blank(rng: np.random.Generator) -> np.ndarray:
    """An empty canvas: refused as 'blank', never classified."""
    image, _, _ = _canvas(rng)
    return _grey(image)


PICTURES = JunkKinds({"scribble": scribble, "box": box, "letter": letter, "dots": dots,
                      "hatching": hatching, "blank": blank}, person_files.write_picture)
