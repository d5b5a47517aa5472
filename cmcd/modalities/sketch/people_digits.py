"""Digits written the ways many people write them and MNIST's writers seldom did, as new items of
the digits dataset: 28x28 grey glyphs (0 paper .. 255 ink, MNIST's framing) that every modality
renders, the photo and the sketch alike.

Why items and not sketch variants: sketch and depth pairs are *instance* pairs, a sketch depicts
the same item as its photo. Drawing a foot under the sketch of an MNIST "1" whose photo has none
would pair two different shapes and teach the student that a foot means nothing the teacher can
see. So each new shape is an item of its own, the teacher's photo of it shows the same shape, and
it falls in the training pairs, the validation or the test split like any other item
(cmcd.modalities.pairs splits these items apart from MNIST's, so MNIST's splits stay as they were).

Two families, ITEMS_PER_CLASS each half:
- pen strokes (cmcd.modalities.sketch.strokes): PEOPLES_SHAPES (a 1 with a flag and a foot, 7 with a hook or a
  bar, open and closed 4, 6 and 9 with small, large or open loops) and the common DIGITS shapes,
  with random slant, aspect, wobble and pen width;
- printed digits as people copy them from type: TRAINING_FONTS (DejaVu sans, serif and mono,
  regular and bold, shipped with matplotlib), thinned or thickened at random. Other fonts (STIX,
  Computer Modern) are kept for measuring (cmcd.modalities.sketch.drawn_styles), never drawn here.

Made once by scripts/make_people_digits.py into cmcd/shipped/data/people-digits.npz (fonts
rasterise slightly differently across FreeType versions, so the items are shipped, not redrawn).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from cmcd.modalities.sketch import strokes

ITEMS_PER_CLASS = 200
SEED = 20
BIG = 112  # drawn at 4x MNIST's 28 pixels, then shrunk
TRAINING_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
                  "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSans-Oblique.ttf")


def font_path(name: str) -> Path:
    """A font file shipped with matplotlib (mpl-data/fonts/ttf)."""
    import matplotlib  # only when drawing: loading the dataset needs no matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


def mnist_framed(ink: np.ndarray) -> np.ndarray:
    """Ink (H, W) in [0, 1] -> a 28x28 uint8 glyph framed as MNIST's: the strokes' bounding box
    scaled to fit 20x20 (aspect kept), centred by its centre of mass."""
    rows, cols = np.nonzero(ink > 0.1)
    ink = ink[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    scale = 20 / max(ink.shape)
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    small = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize(size, Image.LANCZOS),
                       np.float32)
    glyph = np.zeros((28, 28), np.float32)
    top, left = (28 - size[1]) // 2, (28 - size[0]) // 2
    glyph[top: top + size[1], left: left + size[0]] = small
    centre_y, centre_x = ndimage.center_of_mass(glyph)
    glyph = ndimage.shift(glyph, (np.clip(13.5 - centre_y, -4, 4), np.clip(13.5 - centre_x, -4, 4)), order=1)
    return np.clip(glyph, 0, 255).round().astype(np.uint8)


def _stroke_item(label: int, rng: np.random.Generator) -> np.ndarray:
    shapes = strokes.PEOPLES_SHAPES.get(str(label), []) * 2 + strokes.DIGITS[str(label)]
    shape = shapes[int(rng.integers(len(shapes)))]
    aspect = np.exp(rng.uniform(-0.25, 0.25))
    stretched = [[(0.5 + (x - 0.5) * aspect, y) for x, y in line] for line in shape]
    pen = strokes.Pen(canvas=(BIG, BIG), size=0.7, width=rng.uniform(7, 14),
                      slant=rng.uniform(-0.3, 0.3), wobble=rng.uniform(0, 0.02))
    return 1.0 - strokes.draw(stretched, pen, rng)


def printed(label: int, font: str, weight: int) -> np.ndarray:
    """The digit typed in `font` as ink (BIG, BIG) in [0, 1]; `weight` pixels of erosion (< 0,
    thinner) or dilation (> 0, bolder) at BIG's scale."""
    image = Image.new("L", (BIG, BIG), 0)
    ImageDraw.Draw(image).text((BIG / 2, BIG / 2), str(label), fill=255, anchor="mm",
                               font=ImageFont.truetype(str(font_path(font)), int(BIG * 0.7)))
    ink = np.asarray(image, np.float32) / 255
    if weight:
        grow = ndimage.grey_dilation if weight > 0 else ndimage.grey_erosion
        ink = grow(ink, footprint=np.hypot(*np.mgrid[-2:3, -2:3]) <= abs(weight))
    return ink


def _printed_item(label: int, rng: np.random.Generator) -> np.ndarray:
    font = TRAINING_FONTS[int(rng.integers(len(TRAINING_FONTS)))]
    ink = printed(label, font, int(rng.choice([-1, 0, 0, 1, 2])))
    shear = rng.uniform(-0.2, 0.2)
    return ndimage.affine_transform(ink, [[1, 0], [shear, 1]], offset=(0, -shear * BIG / 2), order=1)


def make_item(label: int, index: int) -> np.ndarray:
    """Item `index` of class `label`: a 28x28 uint8 glyph, pen strokes (even index) or printed (odd)."""
    make = _stroke_item if index % 2 == 0 else _printed_item
    return mnist_framed(make(label, np.random.default_rng([SEED, label, index])))


def make_items() -> tuple[np.ndarray, np.ndarray]:
    """(10 ITEMS_PER_CLASS, 28, 28) uint8 glyphs and their labels, class by class; the same every time."""
    images = [make_item(label, index) for label in range(10) for index in range(ITEMS_PER_CLASS)]
    return np.stack(images), np.repeat(np.arange(10, dtype=np.uint8), ITEMS_PER_CLASS)
