"""Sketch-pad junk for "not sure": scribbles, boxes, letters, dots, hatching, mouse-drawn letters,
arrows, ticks, stars, smileys, circles with a cross and a blank canvas."""

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


def _mouse_pen(rng: np.random.Generator) -> strokes.Pen:
    """A sketch pad's brush moved by a mouse: a big canvas, one steady width, a shaky hand."""
    side = int(rng.integers(300, 700))
    return strokes.Pen(canvas=(side, side), size=rng.uniform(0.35, 0.8),
                       centre=tuple(rng.uniform(0.35, 0.65, 2)), width=rng.uniform(4, 30),
                       slant=rng.uniform(-0.15, 0.15), wobble=rng.uniform(0.005, 0.03))


def mouse_letter(rng: np.random.Generator) -> np.ndarray:
    """An L, T or X drawn with the mouse on the sketch pad."""
    name = str(rng.choice(["L", "T", "X"]))
    return strokes.draw(_sketchy(strokes.LETTERS[name], rng), _mouse_pen(rng), rng)


def _sketchy(shape: strokes.Strokes, rng: np.random.Generator) -> strokes.Strokes:
    """A shape's strokes with each point moved a little and the whole stretched, as no two hands agree."""
    aspect = np.exp(rng.uniform(-0.4, 0.4))
    return [[(0.5 + (x - 0.5) * aspect + rng.normal(0, 0.03), y + rng.normal(0, 0.03)) for x, y in line]
            for line in shape]


def _turned(shape: strokes.Strokes, degrees: float) -> strokes.Strokes:
    angle = np.radians(degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    return [[(0.5 + cos * (x - 0.5) - sin * (y - 0.5), 0.5 + sin * (x - 0.5) + cos * (y - 0.5))
             for x, y in line] for line in shape]


ARROW = [[(0.05, 0.5), (0.95, 0.5)], [(0.65, 0.25), (0.95, 0.5), (0.65, 0.75)]]
TICK = [[(0.1, 0.55), (0.38, 0.9), (0.92, 0.1)]]
CIRCLE_WITH_A_CROSS = [strokes.arc(0.5, 0.5, 0.45, 0.45, 0, 360), [(0.18, 0.18), (0.82, 0.82)],
                       [(0.82, 0.18), (0.18, 0.82)]]


def arrow(rng: np.random.Generator) -> np.ndarray:
    """An arrow pointing any way, drawn with the mouse."""
    shape = _turned(ARROW, rng.choice([0, 90, 180, 270]) + rng.uniform(-30, 30))
    return strokes.draw(_sketchy(shape, rng), _mouse_pen(rng), rng)


def tick(rng: np.random.Generator) -> np.ndarray:
    """A tick (check mark), drawn with the mouse."""
    return strokes.draw(_sketchy(_turned(TICK, rng.uniform(-20, 20)), rng), _mouse_pen(rng), rng)


STAR = [[(0.5 + 0.45 * np.sin(np.radians(144 * k)), 0.52 - 0.45 * np.cos(np.radians(144 * k)))
         for k in range(6)]]
SMILEY = [strokes.arc(0.5, 0.5, 0.45, 0.45, 0, 360), strokes.arc(0.5, 0.5, 0.25, 0.22, 20, 160),
          strokes.arc(0.35, 0.35, 0.03, 0.03, 0, 360, 8), strokes.arc(0.65, 0.35, 0.03, 0.03, 0, 360, 8)]


def star(rng: np.random.Generator) -> np.ndarray:
    """A five-pointed star in one stroke, drawn with the mouse."""
    return strokes.draw(_sketchy(_turned(STAR, rng.uniform(-20, 20)), rng), _mouse_pen(rng), rng)


def smiley(rng: np.random.Generator) -> np.ndarray:
    """A smiling face: a circle, two eyes and a mouth, drawn with the mouse."""
    return strokes.draw(_sketchy(SMILEY, rng), _mouse_pen(rng), rng)


def circle_with_a_cross(rng: np.random.Generator) -> np.ndarray:
    """A circle crossed out by an X (or a plus), drawn with the mouse."""
    shape = _turned(CIRCLE_WITH_A_CROSS, rng.choice([0, 45]) + rng.uniform(-10, 10))
    return strokes.draw(_sketchy(shape, rng), _mouse_pen(rng), rng)


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
                      "hatching": hatching, "mouse letter": mouse_letter, "arrow": arrow, "tick": tick,
                      "circle with a cross": circle_with_a_cross, "star": star, "smiley": smiley,
                      "blank": blank}, person_files.write_picture,
                     held_out=("circle with a cross", "star", "smiley"))
