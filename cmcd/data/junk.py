"""Inputs that show no class, the way people give them: scribbles, boxes, letters, arrows and ticks on
a sketch pad, depth maps of blobs and ramps, recordings of noise, mains hum, clicks and beeps.

A student answers every input with some class; these are what its "not sure" flag must catch.
Each modality lists its kinds (`Modality.junk`, a `JunkKinds`), each kind a maker that draws one
random input; `write_files` writes them as the files a person would upload, so they reach the
student through the modality's own file reader. Some kinds (a blank canvas, a depth map with no
readings, silence) are meant to be refused by that reader with a clear error.
Kinds are fixed here; which items come out depends only on (seed, kind, index). Some kinds are
`held_out`: calibration never sees them, so `cmcd bench inputs` reports on junk unlike any it was
fitted on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cmcd.data import person_files, strokes

Maker = Callable[[np.random.Generator], object]


@dataclass(frozen=True)
class JunkKinds:
    """A modality's kinds of junk and how one is written as a file (path without its suffix)."""

    makers: Mapping[str, Maker]
    write: Callable[[object, Path], Path]
    held_out: tuple[str, ...] = ()  # kinds never calibrated on, so the bench measures unseen junk

    @property
    def calibration_kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in self.makers if kind not in self.held_out)

    def write_files(self, folder: Path, seed: int, per_kind: int,
                    kinds: tuple[str, ...] | None = None) -> list[tuple[str, Path]]:
        """`per_kind` files of every kind (or of `kinds`) in `folder`: [(kind, path)], kind by kind."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for number, (kind, make) in enumerate(self.makers.items()):
            if kinds is not None and kind not in kinds:
                continue
            for index in range(per_kind):
                rng = np.random.default_rng([seed, number, index])
                stem = folder / f"junk-{kind.replace(' ', '-')}-{index}"
                written.append((kind, self.write(make(rng), stem)))
        return written


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


# --- depth maps: (H, W) float, 0 = no reading, larger = farther ------------------------------------

def _grid(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    height, width = (int(v) for v in rng.integers(24, 200, 2))
    return np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")


def blobs(rng: np.random.Generator) -> np.ndarray:
    """Round lumps in front of a wall."""
    y, x = _grid(rng)
    depth = np.full(y.shape, rng.uniform(1.0, 3.0))
    for _ in range(int(rng.integers(1, 7))):
        cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3)
        depth -= rng.uniform(0.1, 0.5) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    return depth


def depth_noise(rng: np.random.Generator) -> np.ndarray:
    """Readings at random depths, some missing."""
    y, _ = _grid(rng)
    depth = rng.uniform(0.5, 2.0, y.shape)
    return np.where(rng.uniform(0, 1, y.shape) < rng.uniform(0, 0.3), 0.0, depth)


def ramp(rng: np.random.Generator) -> np.ndarray:
    """A tilted plane (a floor or a wall seen at an angle), slightly noisy."""
    y, x = _grid(rng)
    a, b = rng.normal(0, 1, 2)
    return 2.0 + 0.5 * (a * y + b * x) + rng.normal(0, 0.01, y.shape)


def block(rng: np.random.Generator) -> np.ndarray:
    """A box standing in front of a wall."""
    y, x = _grid(rng)
    top, left = rng.uniform(0.05, 0.5, 2)
    bottom, right = top + rng.uniform(0.2, 0.5), left + rng.uniform(0.2, 0.5)
    inside = (y > top) & (y < bottom) & (x > left) & (x < right)
    return np.where(inside, 1.5, 2.0) + rng.normal(0, 0.005, y.shape)


def no_readings(rng: np.random.Generator) -> np.ndarray:
    """A depth map whose every reading is missing: refused, never classified."""
    y, _ = _grid(rng)
    return np.zeros(y.shape)


DEPTH_MAPS = JunkKinds({"blobs": blobs, "noise": depth_noise, "ramp": ramp, "block": block,
                        "no readings": no_readings}, person_files.write_depth)


# --- sounds: (wave float32 in [-1, 1], sample rate) -------------------------------------------------

RATES = (8000, 16000, 22050, 44100, 48000)


def _seconds(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    rate = int(rng.choice(RATES))
    return np.arange(int(rate * rng.uniform(0.6, 2.0))) / rate, rate


def _level(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (wave / max(np.abs(wave).max(), 1e-9) * rng.uniform(0.05, 0.9)).astype(np.float32)


def noise(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """White, pink or brown noise (hiss, rumble)."""
    t, rate = _seconds(rng)
    spectrum = np.fft.rfft(rng.normal(0, 1, len(t)))
    frequencies = np.maximum(np.fft.rfftfreq(len(t), 1 / rate), 20.0)
    coloured = np.fft.irfft(spectrum * frequencies ** (-rng.uniform(0, 2) / 2), len(t))
    return _level(coloured, rng), rate


def hum(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Mains hum: 50 or 60 Hz and its harmonics, with a little hiss."""
    t, rate = _seconds(rng)
    mains = rng.choice([50.0, 60.0])
    wave = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.2, 1) / k
               for k in range(1, 8))
    return _level(wave + rng.normal(0, 0.01, len(t)), rng), rate


def clicks(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A train of clicks (a ticking clock, a mouse, a crackling line)."""
    t, rate = _seconds(rng)
    wave = rng.normal(0, 0.002, len(t))
    period = int(rate * rng.uniform(0.04, 0.3))
    for start in range(int(rng.integers(0, period)), len(t), period):
        length = int(rng.integers(5, 60))
        wave[start: start + length] += rng.normal(0, 1, len(wave[start: start + length]))
    return _level(wave, rng), rate


def beeps(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A steady tone, a sweep, or a few beeps."""
    t, rate = _seconds(rng)
    low, high = np.sort(rng.uniform(200, 3000, 2))
    frequency = low + (high - low) * t / t[-1] * rng.integers(0, 2)
    wave = np.sin(2 * np.pi * np.cumsum(frequency) / rate)
    if rng.uniform() < 0.5:
        wave *= np.sin(2 * np.pi * rng.uniform(1, 5) * t) > 0
    return _level(wave, rng), rate


def silence(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Near silence (a microphone left open in a quiet room): refused, never classified."""
    t, rate = _seconds(rng)
    return rng.normal(0, 1e-4, len(t)).astype(np.float32), rate


def write_sound(made: tuple[np.ndarray, int], stem: Path) -> Path:
    wave, rate = made
    return person_files.write_sound(wave, rate, stem)


SOUNDS = JunkKinds({"noise": noise, "hum": hum, "clicks": clicks, "beeps": beeps,
                    "silence": silence}, write_sound)
