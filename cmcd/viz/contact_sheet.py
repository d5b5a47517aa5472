"""A picture of a pair's data: one row per class, each source photo next to its target."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from cmcd.data.cache import atomic_write_bytes
from cmcd.modalities.pairs import PairData

CELL = 32
SCALE = 3
LABEL_WIDTH = 110


def cell_picture(sample: torch.Tensor, modality) -> np.ndarray:
    """One sample drawn by its modality, resized (nearest) to a CELL x CELL cell."""
    picture = torch.from_numpy(modality.to_picture(sample)).permute(2, 0, 1).float()
    cell = torch.nn.functional.interpolate(picture[None], size=(CELL, CELL), mode="nearest")[0]
    return cell.byte().permute(1, 2, 0).numpy()


def contact_sheet(data: PairData, per_class: int = 4, split: str = "test") -> Image.Image:
    chosen = data.split(split)
    rows = []
    for label in range(len(data.class_names)):
        picks = torch.nonzero(chosen.labels == label).flatten()[:per_class]
        cells = []
        for index in picks.tolist():
            cells.append(cell_picture(chosen.source[index], data.spec.source))
            cells.append(cell_picture(chosen.target[index], data.spec.target))
            cells.append(np.full((CELL, 6, 3), 255, dtype=np.uint8))
        rows.append(np.concatenate(cells, axis=1))
    grid = np.concatenate(rows, axis=0)
    sheet = Image.fromarray(grid).resize((grid.shape[1] * SCALE, grid.shape[0] * SCALE),
                                         Image.NEAREST)
    canvas = Image.new("RGB", (sheet.width + LABEL_WIDTH, sheet.height + 30), "white")
    canvas.paste(sheet, (LABEL_WIDTH, 30))
    draw = ImageDraw.Draw(canvas)
    pairing = "class pairs" if data.spec.pairing == "class" else "instance pairs"
    draw.text((4, 8), f"{data.spec.name} (gap {data.gap}, {pairing}): {data.spec.source} source | "
              f"{data.spec.target} target", fill="black")
    for label, name in enumerate(data.class_names):
        draw.text((4, 30 + label * CELL * SCALE + CELL * SCALE // 2 - 6), name, fill="black")
    return canvas


def write_contact_sheet(data: PairData, path: Path, per_class: int = 4) -> Path:
    buffer = io.BytesIO()
    contact_sheet(data, per_class).save(buffer, format="PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)
