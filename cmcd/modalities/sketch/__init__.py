"""Sketches: a hand-drawn line drawing of the item, dark ink on white paper (1x32x32 float).

A person's drawing (any size, either polarity) is cropped to its strokes, centred like the training
glyphs and redrawn with the renderer's pen, so a fat brush and a thin pen both land in the
training domain; the renderer ends every training sketch with the same crop and redraw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cmcd.data import person_files
from cmcd.data.inputs import InputError, check_file, open_image
from cmcd.modalities import augment as augmentations
from cmcd.modalities.base import Modality, Pairing, RenderRequest, TryIt
from cmcd.modalities.encoders import ImageEncoder
from cmcd.modalities.sketch import junk, renderer

CANVAS = renderer.CANVAS
GLYPH_BOX = renderer.GLYPH_BOX


class SketchInput(nn.Module):
    """Sketches: dark ink on white paper -> ink as positive values on a zero background, so blank
    paper gives zero activations and zero padding at the border looks like paper."""

    out_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 - x.float()


def render(request: RenderRequest) -> torch.Tensor:
    """Strokes along the skeleton (digits) or the outline (clothing): the pair's `strokes` option;
    its `without` option leaves out people-like ingredients (renderer.INGREDIENTS)."""
    strokes = request.options.get("strokes", "skeleton")
    without = tuple(request.options.get("without", ()))
    parts = [renderer.render_sketch(part.images, part.ids, part.seed, part.gap, strokes, without)
             for part in request.chunks()]
    return torch.cat(parts).float() / 255.0


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # white paper: revealed borders and erased patches are white
    shifted = augmentations.random_affine(x, generator, fill=1.0)
    return augmentations.random_erase(shifted, generator, 0.1, value=1.0)


def sketch_from_array(grey: np.ndarray) -> torch.Tensor:
    """A greyscale drawing (H, W) in [0, 1], any polarity -> (1, 32, 32) dark ink on white."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) < 0.5:  # light on dark: make the paper white
        grey = 1.0 - grey
    low, high = float(grey.min()), float(grey.max())
    if high - low < 0.1:
        raise InputError("the drawing is blank: no strokes found")
    ink = (high - grey) / (high - low)  # 0 paper .. 1 darkest ink
    rows, cols = np.nonzero(ink > 0.3)
    ink = ink[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    side = max(ink.shape)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2
    square[top: top + ink.shape[0], left: left + ink.shape[1]] = ink
    box = 2 * GLYPH_BOX
    square = torch.from_numpy(square)[None, None]
    # Shrinking keeps each cell's darkest pixel: averaging would fade a fine pen on a big canvas
    # below the ink threshold and break its strokes.
    resized = (F.adaptive_max_pool2d(square, box) if side > box
               else F.interpolate(square, size=(box, box), mode="bilinear"))
    margin = CANVAS - GLYPH_BOX
    fine = F.pad(resized, (margin, 2 * CANVAS - box - margin) * 2)
    return renderer.redraw(fine)[0]


def load_file(path: Path) -> torch.Tensor:
    """A PNG/JPEG drawing of any size; transparent pixels are paper."""
    image = open_image(check_file(path))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        backdrop = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(backdrop, image.convert("RGBA"))
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return sketch_from_array(grey)


def write_files(request: RenderRequest, folder: Path) -> list[Path]:
    """Each sketch upscaled to a 256x256 8-bit PNG, as a sketch pad saves a drawing."""
    big = F.interpolate(render(request), size=(256, 256), mode="bilinear")[:, 0].clamp(0, 1).numpy()
    return [person_files.write_picture(grey, Path(folder) / f"item-{item_id}")
            for item_id, grey in zip(request.ids.tolist(), big, strict=True)]


def to_picture(sample: torch.Tensor) -> np.ndarray:
    grey = (sample[0].float().clamp(0, 1) * 255).round().byte()
    return grey[..., None].repeat(1, 1, 3).numpy()


SKETCH = Modality(
    name="sketch", render=render, adapter=SketchInput, encoder=ImageEncoder,
    to_picture=to_picture, load_file=load_file, read_drawing=sketch_from_array, augment=augment,
    gap_meaning="stroke dropout, wobble and strokes that stop short",
    try_it=TryIt("Draw a sketch", "sketchpad", "Sketch pad (draw, or upload a picture)"),
    write_files=write_files, junk=junk.PICTURES,
    pairs=(Pairing("digits", "instance", {"strokes": "skeleton"}, ("pens", "hand", "coarsen")),
           # outlines are traced, not drawn by a slanting hand
           Pairing("fashion", "instance", {"strokes": "outline"}, ("pens", "coarsen"))))
