"""Segmentation scores from predicted and true label maps: mean IoU and pixel accuracy, both from
one confusion matrix over every pixel of a split; and the few-label draws (k labelled maps per
class)."""

from __future__ import annotations

import numpy as np
import torch

FEW_LABEL_KS = (1, 5, 10)


def confusion(predicted: torch.Tensor, truth: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(classes, classes) pixel counts, rows the true class, columns the predicted one."""
    truth, predicted = truth.long().flatten(), predicted.long().flatten()
    return torch.bincount(truth * num_classes + predicted,
                          minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_per_class(counts: torch.Tensor) -> torch.Tensor:
    """IoU of each class; NaN for a class neither present nor predicted."""
    counts = counts.double()
    hits = counts.diagonal()
    union = counts.sum(dim=0) + counts.sum(dim=1) - hits
    return torch.where(union > 0, hits / union.clamp_min(1), torch.full_like(hits, float("nan")))


def _mean_present(iou: torch.Tensor) -> float:
    present = iou[~iou.isnan()]
    return round(float(present.mean()), 4) if len(present) else float("nan")


def segmentation_scores(predicted: torch.Tensor, truth: torch.Tensor, num_classes: int) -> dict:
    """{"miou": mean IoU over the classes present or predicted, "miou_foreground": the same without
    class 0, the background (whose IoU, near 0.9, otherwise dominates the mean), "pixel_acc",
    "iou": per class}."""
    counts = confusion(predicted, truth, num_classes)
    iou = iou_per_class(counts)
    return {"miou": _mean_present(iou), "miou_foreground": _mean_present(iou[1:]),
            "pixel_acc": round(float(counts.diagonal().sum() / counts.sum()), 4),
            "iou": [None if value != value else round(float(value), 4) for value in iou.tolist()]}


def few_label_rows(labels: torch.Tensor, k: int, draw: int, seed: int) -> torch.Tensor:
    """Positions of k items per class (fewer when a class has fewer), one draw of many: the same
    (k, draw, seed) always gives the same rows."""
    rng = np.random.default_rng([seed, k, draw])
    labels = labels.numpy()
    rows = [rng.permutation(np.flatnonzero(labels == c))[:k] for c in np.unique(labels)]
    return torch.from_numpy(np.sort(np.concatenate(rows)))
