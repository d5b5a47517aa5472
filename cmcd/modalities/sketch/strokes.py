"""Letters and digits as pen strokes, drawn the way a person draws on a sketch pad: any canvas size,
pen width, slant, wobble and place on the canvas.

Each character is a few polylines in a unit box (x to the right, y downwards); some digits have
more than one common shape (a 7 with a crossbar, an open 4, a 1 with a flag and a base). Used for
inputs that are no class (letters such as "L", cmcd.modalities.sketch.junk) and for digits drawn in styles
other than the training sketches (cmcd.modalities.sketch.drawn_styles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float,
        points: int = 24) -> list[tuple[float, float]]:
    """Points along an ellipse from angle `start` to `end` in degrees (0 = right, 90 = down)."""
    angles = np.radians(np.linspace(start, end, points))
    return list(zip(cx + rx * np.cos(angles), cy + ry * np.sin(angles), strict=True))


Strokes = list[list[tuple[float, float]]]

DIGITS: dict[str, list[Strokes]] = {
    "0": [[arc(0.5, 0.5, 0.32, 0.46, 0, 360)], [arc(0.5, 0.5, 0.4, 0.45, -60, 300)]],
    "1": [[[(0.5, 0.05), (0.5, 0.95)]],
          [[(0.28, 0.25), (0.55, 0.05), (0.55, 0.95)], [(0.3, 0.95), (0.8, 0.95)]]],
    "2": [[arc(0.5, 0.3, 0.3, 0.25, 190, 400) + [(0.15, 0.95), (0.85, 0.95)]]],
    "3": [[arc(0.5, 0.28, 0.28, 0.23, 200, 450) + arc(0.5, 0.72, 0.32, 0.23, 270, 520)],
          [[(0.2, 0.05), (0.8, 0.05), (0.45, 0.4)] + arc(0.5, 0.68, 0.32, 0.27, 270, 520)]],
    "4": [[[(0.65, 0.05), (0.12, 0.65), (0.9, 0.65)], [(0.65, 0.05), (0.65, 0.95)]],
          [[(0.22, 0.05), (0.15, 0.6), (0.85, 0.6)], [(0.65, 0.2), (0.65, 0.95)]]],
    "5": [[[(0.8, 0.05), (0.25, 0.05), (0.22, 0.45)] + arc(0.5, 0.68, 0.32, 0.27, 240, 500)]],
    "6": [[arc(0.62, 0.55, 0.42, 0.5, 265, 160) + arc(0.5, 0.7, 0.3, 0.25, 180, 540)]],
    "7": [[[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)]],
          [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)], [(0.35, 0.5), (0.8, 0.5)]]],
    "8": [[arc(0.5, 0.27, 0.25, 0.22, 0, 360), arc(0.5, 0.72, 0.3, 0.25, 0, 360)],
          [arc(0.5, 0.27, 0.25, 0.22, 90, 450) + arc(0.5, 0.72, 0.3, 0.25, 270, 630)]],
    "9": [[arc(0.5, 0.3, 0.3, 0.25, 0, 360), [(0.8, 0.3), (0.75, 0.95)]],
          [arc(0.5, 0.3, 0.3, 0.25, 0, 360) + arc(0.2, 0.3, 0.6, 0.65, 0, 90)]],
}

# More of the ways many people write digits, which MNIST's writers seldom used: a 1 with a flag (with
# and without a foot), a 7 with a hooked start, 4s open and closed, 6s and 9s with small, large or
# open loops. The digits dataset holds items drawn in these shapes (cmcd.modalities.sketch.people_digits), and
# the drawn style "people's shapes" (cmcd.modalities.sketch.drawn_styles) measures them.
PEOPLES_SHAPES: dict[str, list[Strokes]] = {
    "1": [[[(0.3, 0.22), (0.55, 0.05), (0.55, 0.95)]],
          [[(0.2, 0.3), (0.55, 0.05), (0.55, 0.95)], [(0.25, 0.95), (0.85, 0.95)]],
          [[(0.35, 0.15), (0.55, 0.05), (0.52, 0.95)], [(0.38, 0.95), (0.68, 0.95)]]],
    "4": [[[(0.6, 0.05), (0.1, 0.68), (0.9, 0.68)], [(0.6, 0.05), (0.6, 0.95)]],
          [[(0.2, 0.05), (0.2, 0.6), (0.85, 0.6)], [(0.7, 0.05), (0.7, 0.95)]],
          [[(0.3, 0.05), (0.12, 0.55), (0.9, 0.55)], [(0.68, 0.25), (0.62, 0.95)]]],
    "6": [[arc(0.65, 0.6, 0.45, 0.55, 260, 170) + arc(0.42, 0.8, 0.18, 0.15, 180, 540)],
          [arc(0.55, 0.45, 0.35, 0.4, 280, 185) + arc(0.5, 0.62, 0.33, 0.33, 180, 530)],
          [arc(0.62, 0.55, 0.42, 0.5, 265, 160) + arc(0.5, 0.7, 0.3, 0.25, 180, 450)]],
    "7": [[[(0.15, 0.15), (0.15, 0.05), (0.85, 0.05), (0.45, 0.95)]],
          [[(0.15, 0.15), (0.15, 0.05), (0.85, 0.05), (0.45, 0.95)], [(0.3, 0.5), (0.8, 0.5)]],
          [[(0.12, 0.08), (0.85, 0.05)] + arc(0.2, 0.05, 0.65, 0.9, 0, 90, 12)]],
    "9": [[arc(0.5, 0.2, 0.22, 0.16, 0, -360), [(0.72, 0.2), (0.66, 0.95)]],
          [arc(0.48, 0.38, 0.36, 0.34, 0, -360), [(0.84, 0.38), (0.8, 0.95)]],
          [arc(0.5, 0.3, 0.3, 0.25, 115, 360) + [(0.78, 0.95)]]],
}

# Letters that look like no digit (no O, I, S, Z, B, G, Q).
LETTERS: dict[str, Strokes] = {
    "L": [[(0.2, 0.05), (0.2, 0.95), (0.8, 0.95)]],
    "T": [[(0.1, 0.05), (0.9, 0.05)], [(0.5, 0.05), (0.5, 0.95)]],
    "X": [[(0.15, 0.05), (0.85, 0.95)], [(0.85, 0.05), (0.15, 0.95)]],
    "H": [[(0.2, 0.05), (0.2, 0.95)], [(0.8, 0.05), (0.8, 0.95)], [(0.2, 0.5), (0.8, 0.5)]],
    "K": [[(0.2, 0.05), (0.2, 0.95)], [(0.8, 0.05), (0.2, 0.55), (0.8, 0.95)]],
    "E": [[(0.8, 0.05), (0.2, 0.05), (0.2, 0.95), (0.8, 0.95)], [(0.2, 0.5), (0.7, 0.5)]],
    "F": [[(0.8, 0.05), (0.2, 0.05), (0.2, 0.95)], [(0.2, 0.5), (0.7, 0.5)]],
    "A": [[(0.1, 0.95), (0.5, 0.05), (0.9, 0.95)], [(0.28, 0.6), (0.72, 0.6)]],
    "V": [[(0.1, 0.05), (0.5, 0.95), (0.9, 0.05)]],
    "W": [[(0.05, 0.05), (0.27, 0.95), (0.5, 0.35), (0.73, 0.95), (0.95, 0.05)]],
    "M": [[(0.1, 0.95), (0.1, 0.05), (0.5, 0.6), (0.9, 0.05), (0.9, 0.95)]],
    "N": [[(0.15, 0.95), (0.15, 0.05), (0.85, 0.95), (0.85, 0.05)]],
    "Y": [[(0.1, 0.05), (0.5, 0.5), (0.9, 0.05)], [(0.5, 0.5), (0.5, 0.95)]],
}


@dataclass(frozen=True)
class Pen:
    """How one drawing is made: canvas (height, width) in pixels, the glyph's height as a share of
    the canvas, its centre (as shares), pen width in pixels, slant (x shift per unit of height),
    wobble (as a share of the glyph's height) and ink darkness (1 black)."""

    canvas: tuple[int, int] = (280, 280)
    size: float = 0.7
    centre: tuple[float, float] = (0.5, 0.5)
    width: float = 12.0
    slant: float = 0.0
    wobble: float = 0.0
    ink: float = 1.0


def _resampled(line: list[tuple[float, float]], spacing: float = 0.02) -> np.ndarray:
    """The polyline with points about `spacing` apart, so wobble bends straight strokes too."""
    points = np.asarray(line, dtype=np.float64)
    lengths = np.r_[0, np.cumsum(np.hypot(*np.diff(points, axis=0).T))]
    steps = np.linspace(0, lengths[-1], max(2, int(lengths[-1] / spacing) + 1))
    return np.stack([np.interp(steps, lengths, points[:, 0]), np.interp(steps, lengths, points[:, 1])], 1)


def _wobbled(points: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """A hand's tremor: smooth low-frequency displacement along the stroke."""
    if amount <= 0:
        return points
    t = np.linspace(0, 1, len(points))[:, None]
    waves = rng.uniform(1, 4, (1, 2)), rng.uniform(0, 2 * np.pi, (1, 2))
    return points + amount * np.sin(2 * np.pi * waves[0] * t + waves[1])


def draw(strokes: Strokes, pen: Pen, rng: np.random.Generator) -> np.ndarray:
    """The strokes drawn with `pen`: greyscale (H, W) in [0, 1], dark ink on white paper."""
    height, width = pen.canvas
    side = pen.size * min(height, width)
    image = Image.new("L", (width, height), 255)
    painter = ImageDraw.Draw(image)
    colour = int(round(255 * (1 - pen.ink)))
    radius = pen.width / 2
    for line in strokes:
        points = _wobbled(_resampled(line), pen.wobble, rng)
        x = (points[:, 0] - 0.5 + pen.slant * (0.5 - points[:, 1])) * side + pen.centre[1] * width
        y = (points[:, 1] - 0.5) * side + pen.centre[0] * height
        xy = list(zip(x.tolist(), y.tolist(), strict=True))
        painter.line(xy, fill=colour, width=max(1, int(round(pen.width))), joint="curve")
        for px, py in (xy[0], xy[-1]):  # round pen tips
            painter.ellipse((px - radius, py - radius, px + radius, py + radius), fill=colour)
    return np.asarray(image, dtype=np.float32) / 255.0
