"""The source modality: photo-like RGB renders (3x32x32 uint8) of the real images."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cmcd.modalities.base import Modality, RenderRequest
from cmcd.modalities.encoders import ImageEncoder
from cmcd.modalities.rgb.renderer import render_rgb

# Photo standardisation, measured once on 2,000 rendered digits and 2,000 rendered fashion items
# (channel means 0.37-0.38, standard deviations 0.22) and fixed, so features never depend on a batch.
RGB_MEAN = 0.375
RGB_STD = 0.22


class RGBInput(nn.Module):
    """Photos: uint8 (or float already in [0, 1]) -> standardised float."""

    out_channels = 3

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.full((1, 3, 1, 1), RGB_MEAN))
        self.register_buffer("std", torch.full((1, 3, 1, 1), RGB_STD))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return (x - self.mean) / self.std


def render(request: RenderRequest) -> torch.Tensor:
    return torch.cat([render_rgb(part.images, part.ids, part.seed) for part in request.chunks()])


def to_picture(photo: torch.Tensor) -> np.ndarray:
    return photo.permute(1, 2, 0).numpy()


RGB = Modality(name="rgb", render=render, adapter=RGBInput, encoder=ImageEncoder,
               to_picture=to_picture, gap_meaning="none: the photos are the source")
