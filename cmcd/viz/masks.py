"""Label maps as pictures: a palette PNG whose pixel values are the labels (0 background, class
+ 1), and a mask laid over a sample's picture."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# background black, then ten colours that stay apart for most colour-blind readers (Tableau 10)
PALETTE = np.array([(0, 0, 0), (78, 121, 167), (242, 142, 43), (225, 87, 89), (118, 183, 178),
                    (89, 161, 79), (237, 201, 72), (176, 122, 161), (255, 157, 167),
                    (156, 117, 95), (186, 176, 172)], dtype=np.uint8)


def colour(mask: np.ndarray) -> np.ndarray:
    """(H, W) labels -> (H, W, 3) uint8 colours."""
    return PALETTE[np.asarray(mask, dtype=np.int64) % len(PALETTE)]


def mask_png(mask: np.ndarray) -> bytes:
    """A palette PNG: each pixel's value is its label, shown in the palette's colour."""
    image = Image.fromarray(np.asarray(mask, dtype=np.uint8))
    image.putpalette(PALETTE.flatten().tolist())  # an "L" image becomes a "P" one
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def overlay(picture: np.ndarray, mask: np.ndarray, alpha: float = 0.55, scale: int = 8) -> np.ndarray:
    """(H, W, 3) picture with the item's labels blended over it (background left as it is),
    enlarged `scale` times with square pixels."""
    mask = np.asarray(mask)
    blended = picture.astype(np.float32)
    item = mask > 0
    blended[item] = (1 - alpha) * blended[item] + alpha * colour(mask)[item]
    out = blended.round().clip(0, 255).astype(np.uint8)
    return out.repeat(scale, axis=0).repeat(scale, axis=1)
