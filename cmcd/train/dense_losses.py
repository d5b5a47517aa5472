"""Dense distillation losses, in the loss registry of `cmcd.train.losses` (task "segmentation").

The interface is the registry's, on feature maps instead of embeddings:
  student  (N, d, h, w) raw dense student features of the batch's target inputs;
  teacher  (N, d, h, w) the teacher's dense embeddings of the paired (registered) photos, unit
           vectors per location.
Location (n, y, x) of the student is paired with location (n, y, x) of the teacher.

- dense-cmc: CMC over locations: `locations` locations drawn per image, each one's positive the
  same location of its photo, its negatives every other drawn location of the batch, in its own
  image and in the others (N · locations anchors; all N · h · w would cost (N·h·w)² scores).
- dense-cmd: CMD over the same drawn locations: the teacher's similarity structure among them.
- dense-l2: the baseline, (1/(N·h·w)) Σ ‖v − u‖² over every location (no negatives, cheap).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from cmcd.train.losses import (
    CMCLoss,
    CMCOptions,
    CMDLoss,
    CMDOptions,
    DistillationLoss,
    SoftTargetOptions,
    register_loss,
    squared_distance,
)
from cmcd.train.options import MethodOptions, setting

SEGMENTATION_TASK = "segmentation"


def locations_setting():
    return setting(8, "locations drawn per image as anchors (of 64 on an 8x8 map)", minimum=1)


def sample_locations(student: Tensor, teacher: Tensor, count: int,
                     generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """(N·count, d) student and teacher vectors at `count` locations per image, drawn without
    replacement (all of them when an image has fewer), the same locations on both sides."""
    n, d, h, w = student.shape
    count = min(count, h * w)
    device = generator.device if generator is not None else student.device
    scores = torch.rand(n, h * w, generator=generator, device=device).to(student.device)
    picks = scores.topk(count, dim=1).indices[:, None, :].expand(n, d, count)

    def take(maps: Tensor) -> Tensor:
        return maps.flatten(2).gather(2, picks).transpose(1, 2).reshape(n * count, d)

    return take(student), take(teacher)


class _SampledLoss(DistillationLoss):
    """A loss of `cmcd.train.losses` over locations drawn from the batch's feature maps."""

    task = SEGMENTATION_TASK
    inner: DistillationLoss

    @classmethod
    def build(cls, options, generator: torch.Generator | None = None):
        return cls(options, generator=generator)

    def __init__(self, options, inner: DistillationLoss, generator: torch.Generator | None = None):
        super().__init__()
        self.locations = options.locations
        self.inner = inner
        self.generator = generator  # None: torch's global generator

    def terms(self, student, teacher, index, bank):
        v, u = sample_locations(student, teacher, self.locations, self.generator)
        return {self.name: next(iter(self.inner.terms(v, u, None, None).values()))}


@dataclass(frozen=True)
class DenseCMCOptions(MethodOptions):
    temperature: float = setting(0.3, "softmax temperature τ", above=0)
    locations: int = locations_setting()


@register_loss("dense-cmc", DenseCMCOptions)
class DenseCMCLoss(_SampledLoss):
    """CMC (symmetric InfoNCE) over drawn locations: positives the same location of the paired
    photo, negatives the other drawn locations of this image and of the others."""

    def __init__(self, options: DenseCMCOptions = DenseCMCOptions(),
                 generator: torch.Generator | None = None):
        super().__init__(options, CMCLoss(CMCOptions(options.temperature)), generator)


@dataclass(frozen=True)
class DenseCMDOptions(SoftTargetOptions):
    locations: int = locations_setting()


@register_loss("dense-cmd", DenseCMDOptions)
class DenseCMDLoss(_SampledLoss):
    """CMD (soft targets over the teacher's similarities) among drawn locations."""

    def __init__(self, options: DenseCMDOptions = DenseCMDOptions(),
                 generator: torch.Generator | None = None):
        inner = CMDLoss(CMDOptions(options.teacher_temperature, options.student_temperature))
        super().__init__(options, inner, generator)


@dataclass(frozen=True)
class DenseL2Options(MethodOptions):
    pass


@register_loss("dense-l2", DenseL2Options)
class DenseL2Loss(DistillationLoss):
    """FitNets on feature maps: the mean over locations of ‖normalise(v) − u‖²."""

    task = SEGMENTATION_TASK

    def __init__(self, options: DenseL2Options = DenseL2Options()):
        super().__init__()

    def terms(self, student, teacher, index, bank):
        d = student.shape[1]
        v = F.normalize(student, dim=1).transpose(1, -1).reshape(-1, d)
        return {"dense-l2": squared_distance(v, teacher.transpose(1, -1).reshape(-1, d))}
