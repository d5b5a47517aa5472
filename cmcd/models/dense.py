"""Dense models for segmentation: feature maps instead of one embedding per input.

A dense feature is a hypercolumn (Hariharan et al. 2015) of the residual trunk: the map of its
second stage (8x8 for 32x32 inputs) beside its third stage's (4x4, bilinearly upsampled to 8x8).
The second stage alone says where the item is but hardly which class it is (a 1x1 head on it
reaches mIoU 0.24 on digit photos); the third adds the class (0.58 together).

- `feature_map(encoder, x)`: the hypercolumn of any `ImageEncoder` (the teacher's, frozen).
- `DenseEncoder`: the student, the same encoder family on the target modality (adapter, stem,
  trunk) with a 1x1 convolution from its hypercolumn to the teacher's feature size.
- `DenseHead`: what reads a dense feature: a fixed per-channel standardisation of the teacher's
  hypercolumns (measured on the photos that trained the head), then L2 normalisation per location
  (the dense embedding, where the losses compare teacher and student), then a 1x1 convolution
  to class logits. The teacher's head reads student features the same way (zero-label).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cmcd.data import cache
from cmcd.modalities import build_encoder
from cmcd.modalities.encoders import ImageEncoder
from cmcd.models.checkpoints import load_checkpoint, save_checkpoint

FEATURE_STAGES = (1, 2)  # trunk stages (counted from 0) whose maps make the hypercolumn
FEATURE_SIZE = 8  # the hypercolumn's side for 32x32 inputs
IMAGE_SIZE = 32


def feature_map(encoder: ImageEncoder, x: torch.Tensor) -> torch.Tensor:
    """(N, C, 8, 8) hypercolumns of raw inputs `x` (one block per stage, as encoders are built)."""
    h = encoder.stem(encoder.adapter(x))
    maps = []
    for stage, block in enumerate(encoder.trunk.stages):
        h = block(h)
        if stage in FEATURE_STAGES:
            maps.append(h)
    size = maps[0].shape[-2:]
    return torch.cat([m if m.shape[-2:] == size else
                      F.interpolate(m, size=size, mode="bilinear", align_corners=False)
                      for m in maps], dim=1)


def hypercolumn_channels(width: int) -> int:
    return sum(width * 2 ** stage for stage in FEATURE_STAGES)


class DenseEncoder(nn.Module):
    """Raw target inputs -> (N, out_dim, 8, 8) unnormalised dense features."""

    def __init__(self, encoder: ImageEncoder, out_dim: int):
        super().__init__()
        encoder.fc = nn.Identity()  # the pooled embedding is not used here
        self.encoder = encoder
        self.project = nn.Conv2d(hypercolumn_channels(encoder.config["width"]), out_dim, 1)
        self.config = {**encoder.config, "class": type(self).__name__, "out_dim": out_dim}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(feature_map(self.encoder, x))

    @classmethod
    def from_config(cls, config: dict) -> DenseEncoder:
        """A fresh encoder of this shape (load a state dict into it after)."""
        return cls(build_encoder(config["modality"], config["width"], config["embed_dim"]),
                   config["out_dim"])


class DenseHead(nn.Module):
    """Standardise, normalise per location, then a 1x1 convolution to class logits."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("std", torch.ones(1, channels, 1, 1))
        self.classify = nn.Conv2d(channels, num_classes, 1)
        self.config = {"channels": channels, "num_classes": num_classes}

    @torch.no_grad()
    def fit_standardisation(self, features: torch.Tensor) -> None:
        self.mean.copy_(features.mean(dim=(0, 2, 3), keepdim=True))
        self.std.copy_(features.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-5))

    def embed(self, raw: torch.Tensor) -> torch.Tensor:
        """The teacher's dense embedding of its raw hypercolumns: unit vectors per location."""
        return F.normalize((raw - self.mean) / self.std, dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) dense features (normalised here) -> (N, classes, h, w) logits."""
        return self.classify(F.normalize(features, dim=1))


def upsample_logits(logits: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    return F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)


@torch.no_grad()
def predict_masks(encoder: nn.Module, head: DenseHead, inputs: torch.Tensor,
                  batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels (N, 32, 32) int64, probabilities (N, classes, 32, 32)) of raw inputs, computed in
    eval mode on the encoder's device, returned on the CPU."""
    device = next(encoder.parameters()).device
    head.to(device)
    was_training = encoder.training
    encoder.eval()
    parts = []
    try:
        for start in range(0, len(inputs), batch_size):
            logits = upsample_logits(head(encoder(inputs[start: start + batch_size].to(device))))
            parts.append(logits.float().softmax(dim=1).cpu())
    finally:
        encoder.train(was_training)
    probabilities = torch.cat(parts)
    return probabilities.argmax(dim=1), probabilities


def save_segmenter(stem, student: DenseEncoder, head: DenseHead, metadata: dict):
    """A segmentation student and the dense head that reads it, as one checkpoint (STEM.safetensors
    and STEM.json, as `cmcd.models.checkpoints` writes them)."""
    return save_checkpoint(stem, {"encoder": student, "head": head},
                           {"encoder": student.config, "head": head.config}, metadata)


def load_segmenter(stem) -> tuple[DenseEncoder, DenseHead, dict]:
    """(student, head, metadata) of a checkpoint written by `save_segmenter`, in eval mode."""
    states, metadata = load_checkpoint(stem)
    modules = metadata.pop("modules")
    try:
        if modules["encoder"]["class"] != DenseEncoder.__name__:
            raise ValueError(f"its encoder is a {modules['encoder']['class']}")
        student = DenseEncoder.from_config(modules["encoder"])
        student.load_state_dict(states["encoder"])
        head = DenseHead(**modules["head"])
        head.load_state_dict(states["head"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise cache.DamagedFile(f"{stem} is not a segmentation student "
                                f"({type(error).__name__}: {cache.first_line(error)})") from None
    return student.eval(), head.eval(), metadata
