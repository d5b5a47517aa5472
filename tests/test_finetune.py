"""Step 3 by fine-tuning, and the supervised reference's selection on validation, on tiny
synthetic inputs (no rendered data)."""

import pytest
import torch
from torch import nn

from cmcd.modalities import build_encoder, get_modality
from cmcd.models.teacher import load_teacher
from cmcd.train.config import DistillConfig
from cmcd.train.distill import _Selection
from cmcd.train.finetune import NormalizedHead, Schedule, accuracy, few_label_finetune_accuracy
from cmcd.train.objectives import build_objective

CPU = torch.device("cpu")


def two_class_sketches(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: ink in the top half of the page; class 1: in the bottom half."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = torch.rand(n, 1, 32, 32, generator=generator) * 0.2
    for i, label in enumerate(labels):
        rows = slice(0, 16) if label == 0 else slice(16, 32)
        images[i, 0, rows, 8:24] += 0.8
    return images.clamp(0, 1), labels


def student_and_head(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    return build_encoder("sketch", width=4, embed_dim=8), NormalizedHead(nn.Linear(8, 2))


def test_finetuning_starts_from_the_student_learns_and_leaves_the_original_alone():
    student, head = student_and_head()
    pool, pool_labels = two_class_sketches(40, seed=1)
    test, test_labels = two_class_sketches(60, seed=2)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    untouched = accuracy(student, head, test, test_labels)
    frozen = few_label_finetune_accuracy(student, head, pool, pool_labels, test, test_labels,
                                         Schedule(2, 1e-12), CPU, shots=(1,), draws=2)
    assert frozen["1"] == pytest.approx(untouched)  # lr ~0: still the distilled student's accuracy
    tuned = few_label_finetune_accuracy(student, head, pool, pool_labels, test, test_labels,
                                        Schedule(12, 1e-2), CPU, shots=(1, 5), draws=1)
    assert set(tuned) == {"1", "5"} and tuned["5"] >= 0.9 and untouched < 0.8
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_selection_keeps_the_best_validation_weights_and_runs_out_of_patience():
    module = nn.Linear(2, 1)
    selection = _Selection([module], patience=2)
    scores = [0.5, 0.7, 0.6, 0.65]
    for epoch, score in enumerate(scores, start=1):
        with torch.no_grad():
            module.weight.fill_(score)
        selection.offer(score, epoch)
    assert (selection.best, selection.best_epoch, selection.exhausted) == (0.7, 2, True)
    selection.restore()
    assert torch.all(module.weight == 0.7)


def test_the_supervised_reference_trains_a_head_and_augmentation_of_its_own():
    teacher = load_teacher("digits", "ssl")
    objective = build_objective(DistillConfig(method="supervised"), teacher, get_modality("depth"))
    assert objective.head is not teacher.head and objective.head.weight.requires_grad
    assert objective.head.weight.shape == teacher.head.weight.shape
    assert objective.use_augment and objective.selects_on_validation and objective.patience == 8
