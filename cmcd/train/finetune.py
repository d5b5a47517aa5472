"""Step 3 with a few target labels, by fine-tuning: the WHOLE distilled student and its classifier
(the teacher's head, or a supervised student's own) trained on k labelled target items per class,
then scored on held-out items. The linear probes of `cmcd.eval.metrics.few_label_accuracy` leave
the student frozen; this is the other half of the paper's downstream protocol.

Each (k, draw) starts again from the distilled weights and draws the same labelled items as the
probe of the same seed (`labeled_subset`, stream [seed, k, draw]), so probes and fine-tuning read
the same labels. The few items form one full batch per step, through the one training loop
(`cmcd.train.loop`). BatchNorm keeps the distilled statistics: ten items are too few to re-estimate
them. The schedule (lr, steps) is chosen once on the validation split by `cmcd bench tuning`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cmcd.eval.metrics import labeled_subset
from cmcd.models.embed import embed
from cmcd.train.loop import LoopSettings, train_loop, warmup_cosine

SHOTS = (1, 5, 10)
DRAWS = 5


@dataclass(frozen=True)
class Schedule:
    steps: int  # full-batch optimiser steps per fine-tuning
    lr: float  # peak learning rate (AdamW, cosine to 0)
    weight_decay: float = 5e-4


class NormalizedHead(nn.Module):
    """A linear head over L2-normalised embeddings: how the teacher's head reads a student."""

    def __init__(self, head: nn.Linear):
        super().__init__()
        self.head = head

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.head(F.normalize(embeddings, dim=1))


class _FrozenNorm(nn.Module):
    """The student with every BatchNorm kept in eval mode, whatever mode the loop sets."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.encoder.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


@torch.no_grad()
def classifier_accuracy(classifier: nn.Module, embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of `classifier` (embeddings -> logits) on raw student embeddings, 4 decimals."""
    device = next(classifier.parameters()).device
    logits = classifier(embeddings.to(device)).float().cpu()
    return round(float((logits.argmax(1) == labels.cpu()).float().mean()), 4)


def accuracy(student: nn.Module, classifier: nn.Module, inputs: torch.Tensor,
             labels: torch.Tensor) -> float:
    """Accuracy of classifier(student(inputs)), the student in eval mode."""
    return classifier_accuracy(classifier, embed(student, inputs), labels)


def finetune(student: nn.Module, classifier: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
             schedule: Schedule, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """Copies of student and classifier trained together on (inputs, labels), one full batch a step."""
    student, classifier = copy.deepcopy(student).to(device), copy.deepcopy(classifier).to(device)
    for module in (student, classifier):
        module.requires_grad_(True)
    x, y = inputs.to(device), labels.to(device).long()

    def step(_batch) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(classifier(student(x)).float(), y)}

    settings = LoopSettings([_FrozenNorm(student), classifier], schedule.lr, schedule.weight_decay,
                            device, lr_factor=warmup_cosine(schedule.steps), max_steps=schedule.steps)
    train_loop(step, [None], schedule.steps, settings)
    return student, classifier


def few_label_finetune_accuracy(student: nn.Module, classifier: nn.Module, pool_inputs: torch.Tensor,
                                pool_labels: torch.Tensor, eval_inputs: torch.Tensor,
                                eval_labels: torch.Tensor, schedule: Schedule, device: torch.device,
                                seed: int = 0, shots=SHOTS, draws: int = DRAWS) -> dict[str, float]:
    """{"k": mean accuracy on (eval_inputs, eval_labels)} after fine-tuning on k labelled pool
    items per class, averaged over `draws` labelled subsets, rounded to 4 decimals."""
    pool_y = pool_labels.cpu().numpy()
    result = {}
    for k in shots:
        scores = []
        for draw in range(draws):
            subset = torch.from_numpy(labeled_subset(pool_y, k, np.random.default_rng([seed, k, draw])))
            subset = subset.to(pool_inputs.device)
            tuned = finetune(student, classifier, pool_inputs[subset], pool_labels[subset], schedule,
                             device)
            scores.append(accuracy(*tuned, eval_inputs, eval_labels))
        result[str(k)] = round(float(np.mean(scores)), 4)
    return result
