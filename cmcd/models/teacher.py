"""The frozen source-side teacher: an rgb encoder and a linear head over its normalised embeddings.

Two variants per dataset ship in checkpoints/: `ssl` (SimCLR encoder, linear head trained on the
frozen features) and `ft` (the same encoder fine-tuned with the source labels). Target labels are
never used for either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cmcd.modalities import encoder_from_config
from cmcd.models.checkpoints import load_checkpoint, save_checkpoint
from cmcd.models.embed import embed
from cmcd.paths import checkpoint_root

VARIANTS = ("ssl", "ft")


def teacher_stem(dataset: str, variant: str, root: Path | None = None) -> Path:
    if variant not in VARIANTS:
        raise ValueError(f"unknown teacher {variant!r}; valid: {', '.join(VARIANTS)}")
    return Path(root or checkpoint_root()) / f"teacher-{dataset}-{variant}"


def teacher_digest(dataset: str, variant: str, root: Path | None = None) -> str:
    """A checksum of a saved teacher's weights: which teacher a cache or a study's runs are of."""
    weights = teacher_stem(dataset, variant, root).with_suffix(".safetensors")
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:16]


@dataclass
class Teacher:
    encoder: nn.Module
    head: nn.Linear
    metadata: dict

    def to(self, device) -> Teacher:
        self.encoder.to(device)
        self.head.to(device)
        return self

    def freeze(self) -> Teacher:
        for module in (self.encoder, self.head):
            module.eval()
            module.requires_grad_(False)
        return self

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of uint8 photos (N, 3, 32, 32), on the teacher's device."""
        device = self.head.weight.device
        return embed(self.encoder, images, normalize=True, mixed_precision=False).to(device)

    def classify(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Class logits of normalised embeddings (the teacher's, or an aligned student's)."""
        return self.head(F.normalize(embeddings, dim=1))


def save_teacher(teacher: Teacher, stem: Path) -> Path:
    configs = {"encoder": teacher.encoder.config,
               "head": {"in_features": teacher.head.in_features,
                        "out_features": teacher.head.out_features}}
    return save_checkpoint(stem, {"encoder": teacher.encoder, "head": teacher.head}, configs,
                           teacher.metadata)


def load_teacher(dataset: str, variant: str = "ft", root: Path | None = None) -> Teacher:
    stem = teacher_stem(dataset, variant, root)
    states, metadata = load_checkpoint(stem)
    modules = metadata.pop("modules")
    encoder = encoder_from_config(modules["encoder"])
    encoder.load_state_dict(states["encoder"])
    head = nn.Linear(**modules["head"])
    head.load_state_dict(states["head"])
    return Teacher(encoder, head, metadata).freeze()
