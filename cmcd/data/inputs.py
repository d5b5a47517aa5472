"""What people bring to `cmcd classify` and the app, turned into the student's training domain.

- sketch: PNG/JPEG of any size, dark on light or light on dark: greyscale, polarity fixed to dark
  ink on white, cropped to the drawing, centred, and redrawn with the sketch renderer's pen.
- depth: 8- or 16-bit PNG, or .npy; 0 means no reading, larger values are farther. Valid values
  are rescaled into the training range; missing readings stay 0.
- audio: WAV, FLAC or OGG at any sample rate, mono or stereo (resampled, mixed down, silence
  trimmed; see cmcd.data.renderers.audio.load_audio_file).

Every problem is an InputError (a ValueError) whose message is one sentence a person understands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from cmcd.data.renderers import sketch

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_SIDE = 4096
CANVAS = 32
GLYPH_BOX = 22  # training glyphs span about 20-22 of the 32 pixels
PEN_RADIUS = 1.8  # pixels at twice the resolution: between the renderer's thin and thick pens
NEAR, FAR = 0.45, 0.85  # where valid depths land (training scenes: relief about 0.45-0.85)


class InputError(ValueError):
    """A file that cannot be classified, with a one-line reason."""


def _check_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path.name}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name}: the file is empty")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path.name}: the file is {size / 1e6:.0f} MB; the limit is "
                         f"{MAX_FILE_BYTES / 1e6:.0f} MB")
    return path


def _open_image(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise InputError(f"{path.name}: not a readable image ({type(error).__name__})") from None
    if max(image.size) > MAX_IMAGE_SIDE:
        raise InputError(f"{path.name}: the image is {image.width}x{image.height}; the limit is "
                         f"{MAX_IMAGE_SIDE} pixels a side")
    return image


def sketch_from_array(grey: np.ndarray) -> torch.Tensor:
    """A greyscale drawing (H, W) in [0, 1], any polarity -> (1, 32, 32) dark ink on white.

    The drawing is cropped to its strokes and centred like the training glyphs, then redrawn the
    way the sketch renderer draws: thinned to one-pixel paths and inked with a round pen at twice
    the resolution, so a fat brush or a thin pen both land in the training domain."""
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
    resized = F.interpolate(torch.from_numpy(square)[None, None], size=(box, box),
                            mode="area" if side > box else "bilinear")
    margin = CANVAS - GLYPH_BOX
    fine = F.pad(resized, (margin, 2 * CANVAS - box - margin) * 2)
    path = sketch.thin((fine > 0.4).float())
    pen = sketch.pen_ink(path, PEN_RADIUS)
    return (0.97 * (1 - F.avg_pool2d(pen, 2)[0])).float()


def load_sketch(path: Path) -> torch.Tensor:
    image = _open_image(_check_file(path))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        backdrop = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(backdrop, image.convert("RGBA"))
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return sketch_from_array(grey)


def depth_from_array(depth: np.ndarray) -> torch.Tensor:
    """Raw depth (H, W), 0 = no reading, larger = farther -> (1, 32, 32) in the training range."""
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim == 3 and depth.shape[-1] in (1, 3, 4):
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise InputError(f"a depth map must be a 2-D array; got shape {depth.shape}")
    if not np.isfinite(depth).all():
        depth = np.where(np.isfinite(depth), depth, 0.0)
    valid = depth > 0
    if valid.mean() < 0.05:
        raise InputError("the depth map has almost no valid readings (values > 0)")
    near, far = depth[valid].min(), depth[valid].max()
    scaled = np.where(valid, NEAR + (FAR - NEAR) * (depth - near) / max(far - near, 1e-9), 0.0)
    values = torch.from_numpy(scaled.astype(np.float32))[None, None]
    mask = torch.from_numpy(valid.astype(np.float32))[None, None]
    # average valid readings only, so holes do not pull depths towards zero
    total = F.interpolate(values, size=(CANVAS, CANVAS), mode="area")
    coverage = F.interpolate(mask, size=(CANVAS, CANVAS), mode="area")
    resized = torch.where(coverage > 0.5, total / coverage.clamp_min(1e-6), torch.zeros(()))
    return resized[0]


def load_depth(path: Path) -> torch.Tensor:
    path = _check_file(path)
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise InputError(f"{path.name}: not a readable .npy array ({error})") from None
        if array.dtype.kind not in "fiu":
            raise InputError(f"{path.name}: a depth map must hold numbers; got {array.dtype}")
        return depth_from_array(array)
    image = _open_image(path)
    if image.mode not in ("I;16", "I;16B", "I", "L", "F", "LA", "RGB", "RGBA"):
        image = image.convert("L")
    return depth_from_array(np.asarray(image))


def load_audio(path: Path) -> torch.Tensor:
    from cmcd.data.renderers import audio

    path = _check_file(path)
    try:
        return torch.as_tensor(audio.features_from_file(path)).float()
    except ValueError as error:
        raise InputError(f"{path.name}: {error}") from None


LOADERS = {"sketch": load_sketch, "depth": load_depth, "audio": load_audio}


def load_input(modality: str, path: Path) -> torch.Tensor:
    """A file -> one target sample (1, H, W) ready for the student."""
    if modality not in LOADERS:
        raise InputError(f"no input loader for modality {modality!r}; valid: {', '.join(LOADERS)}")
    return LOADERS[modality](Path(path))
