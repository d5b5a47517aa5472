"""What a distillation run minimises: an objective per method, each a small module returning named
loss terms. The distillation losses of `cmcd.train.losses`, plus the references `random` (no
training), `target-ssl` (SimCLR on the target alone) and `supervised` (all target labels: the
upper bound)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cmcd.models.encoders import ProjectionHead
from cmcd.models.teacher import Teacher
from cmcd.train import augment
from cmcd.train.config import DistillConfig
from cmcd.train.losses import LOSSES, build_loss
from cmcd.train.pretrain import nt_xent


@dataclass
class Batch:
    target: torch.Tensor  # raw target inputs (on the device)
    teacher: torch.Tensor  # normalised teacher embeddings of the same pairs
    index: torch.Tensor  # positions in the bank
    labels: torch.Tensor | None  # target labels: only the `supervised` reference may read them
    bank: torch.Tensor
    generator: torch.Generator



class LossObjective(nn.Module):
    """A registered distillation loss between the student's and the teacher's embeddings."""

    def __init__(self, loss: nn.Module, modality: str, use_augment: bool):
        super().__init__()
        self.loss, self.modality, self.use_augment = loss, modality, use_augment

    def student_view(self, student: nn.Module, batch: Batch) -> torch.Tensor:
        x = batch.target
        if self.use_augment:
            x = augment.augment_target(self.modality, x, batch.generator)
        return student(x)

    def forward(self, student: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        return self.loss(self.student_view(student, batch).float(), batch.teacher,
                         index=batch.index, bank=batch.bank)


class SupervisedObjective(LossObjective):
    """Upper bound: all target labels, through the teacher's frozen head (so the student lands in
    the teacher's space and is evaluated like every other method)."""

    def __init__(self, head: nn.Linear, modality: str, use_augment: bool):
        super().__init__(nn.Identity(), modality, use_augment)
        self.head = head

    def forward(self, student, batch):
        logits = self.head(F.normalize(self.student_view(student, batch).float(), dim=1))
        return {"ce": F.cross_entropy(logits, batch.labels)}


class TargetSSLObjective(LossObjective):
    """Reference: SimCLR on the target modality alone; the teacher is never consulted."""

    def __init__(self, modality: str, embed_dim: int, temperature: float = 0.2):
        super().__init__(nn.Identity(), modality, use_augment=True)
        self.projector = ProjectionHead(embed_dim)
        self.temperature = temperature

    def forward(self, student, batch):
        views = [self.projector(self.student_view(student, batch).float()) for _ in range(2)]
        return {"simclr": nt_xent(views[0], views[1], self.temperature)}


def _loss_options(name: str, config: DistillConfig, generator: torch.Generator | None = None) -> dict:
    """The run's settings that this loss's constructor accepts."""
    candidates = {"temperature": config.temperature, "student_temperature": config.temperature,
                  "teacher_temperature": config.teacher_temperature,
                  "learn_temperature": config.learn_temperature,
                  "negatives": config.negatives, "l2_weight": config.l2_weight, "generator": generator}
    parameters = inspect.signature(LOSSES[name].__init__).parameters
    return {key: value for key, value in candidates.items() if key in parameters}


REFERENCES: dict[str, Callable] = {
    "random": lambda config, teacher, modality: None,
    "target-ssl": lambda config, teacher, modality: TargetSSLObjective(modality, 128),
    "supervised": lambda config, teacher, modality: SupervisedObjective(
        teacher.head, modality, config.augment),
}
METHODS = (*LOSSES, *REFERENCES)


def build_objective(config: DistillConfig, teacher: Teacher, modality: str,
                    generator: torch.Generator | None = None) -> nn.Module | None:
    if config.method in REFERENCES:
        return REFERENCES[config.method](config, teacher, modality)
    if config.method not in LOSSES:
        raise ValueError(f"unknown method {config.method!r}; valid: {', '.join(METHODS)}")
    loss = build_loss(config.method, **_loss_options(config.method, config, generator))
    return LossObjective(loss, modality, config.augment)

