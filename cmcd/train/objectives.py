"""What a distillation run minimises: an objective per method, each a small module returning named
loss terms. The distillation losses of `cmcd.train.losses`, plus the references `random` (no
training), `target-ssl` (SimCLR on the target alone) and `supervised` (all target labels, its own
head, trained to convergence: the upper bound). One registry, `OBJECTIVES`, maps every method to
its options class and builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from cmcd.modalities.encoders import ProjectionHead
from cmcd.models.teacher import Teacher
from cmcd.train.losses import LOSSES
from cmcd.train.options import FieldInfo, MethodOptions, describe, setting
from cmcd.train.pretrain import nt_xent

if TYPE_CHECKING:
    from cmcd.modalities import Modality
    from cmcd.train.config import DistillConfig


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

    def __init__(self, loss: nn.Module, modality: Modality, use_augment: bool):
        super().__init__()
        self.loss, self.modality, self.use_augment = loss, modality, use_augment

    def student_view(self, student: nn.Module, batch: Batch) -> torch.Tensor:
        x = batch.target
        if self.use_augment:
            x = self.modality.augment(x, batch.generator)
        return student(x)

    def forward(self, student: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        return self.loss(self.student_view(student, batch).float(), batch.teacher,
                         index=batch.index, bank=batch.bank)


class SupervisedObjective(LossObjective):
    """Upper bound: all target labels, with the student's own linear head trained alongside it
    (cross-entropy on augmented inputs). The run keeps the weights of its best validation accuracy
    and stops after `patience` validations without a better one (see `cmcd.train.distill`), so a
    long step budget trains it to convergence."""

    selects_on_validation = True

    def __init__(self, embed_dim: int, num_classes: int, modality: Modality, patience: int):
        super().__init__(nn.Identity(), modality, use_augment=modality.augment is not None)
        self.head = nn.Linear(embed_dim, num_classes)
        self.patience = patience

    def classify(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.head(embeddings)

    def forward(self, student, batch):
        logits = self.classify(self.student_view(student, batch).float())
        return {"ce": F.cross_entropy(logits, batch.labels)}


class TargetSSLObjective(LossObjective):
    """Reference: SimCLR on the target modality alone; the teacher is never consulted."""

    def __init__(self, modality: Modality, embed_dim: int, temperature: float):
        super().__init__(nn.Identity(), modality, use_augment=True)
        self.projector = ProjectionHead(embed_dim)
        self.temperature = temperature

    def forward(self, student, batch):
        views = [self.projector(self.student_view(student, batch).float()) for _ in range(2)]
        return {"simclr": nt_xent(views[0], views[1], self.temperature)}


# A builder makes a method's objective (None: nothing to train) from its options, the frozen
# teacher, the target modality, whether the run augments its targets, and the run's generator.
Builder = Callable[[MethodOptions, Teacher, "Modality", bool, "torch.Generator | None"],
                   "nn.Module | None"]


@dataclass(frozen=True)
class Method:
    options: type[MethodOptions]
    build: Builder


def _loss_builder(loss: type[nn.Module]) -> Builder:
    def build(options, teacher, modality, use_augment, generator):
        return LossObjective(loss.build(options, generator), modality, use_augment)

    return build


OBJECTIVES: dict[str, Method] = {name: Method(loss.Options, _loss_builder(loss))
                                 for name, loss in LOSSES.items() if loss.task == "recognition"}


def register_reference(name: str, options: type[MethodOptions]):
    """Function decorator: register a reference method's builder, with its options."""

    def register(build: Builder) -> Builder:
        if name in OBJECTIVES:
            raise ValueError(f"method {name!r} is already registered")
        options.method = name
        OBJECTIVES[name] = Method(options, build)
        return build

    return register


@dataclass(frozen=True)
class RandomOptions(MethodOptions):
    pass


@dataclass(frozen=True)
class TargetSSLOptions(MethodOptions):
    temperature: float = setting(0.2, "SimCLR's NT-Xent temperature", above=0)


@dataclass(frozen=True)
class SupervisedOptions(MethodOptions):
    patience: int = setting(8, "stop after this many validations (one per epoch) without a better "
                               "validation accuracy", minimum=1)


@register_reference("random", RandomOptions)
def _untrained(options, teacher, modality, use_augment, generator):
    return None


@register_reference("target-ssl", TargetSSLOptions)
def _target_ssl(options, teacher, modality, use_augment, generator):
    return TargetSSLObjective(modality, 128, options.temperature)


@register_reference("supervised", SupervisedOptions)
def _supervised(options, teacher, modality, use_augment, generator):
    head = teacher.head  # only for its shape: the reference trains a head of its own
    return SupervisedObjective(head.in_features, head.out_features, modality, options.patience)


METHODS = tuple(OBJECTIVES)


def method_options(method: str) -> type[MethodOptions]:
    if method not in OBJECTIVES:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    return OBJECTIVES[method].options


def option_settings() -> dict[str, list[tuple[str, FieldInfo]]]:
    """Every option name of every method, with each method's setting of that name."""
    by_name: dict[str, list[tuple[str, FieldInfo]]] = {}
    for method, entry in OBJECTIVES.items():
        for info in describe(entry.options):
            by_name.setdefault(info.name, []).append((method, info))
    return by_name


def build_objective(config: DistillConfig, teacher: Teacher, modality: Modality,
                    generator: torch.Generator | None = None) -> nn.Module | None:
    """The run's objective; `generator` feeds any random draws it makes (CRD's negatives)."""
    method = OBJECTIVES[config.method]
    return method.build(config.loss, teacher, modality, config.augment, generator)
