"""Segmentation in the app: the shipped segmentation student's mask of a visitor's depth map (Try
it), the item masks of a pair (Data), and a segmentation distillation with its mIoU (Distill)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cmcd.app.once import once_per_key
from cmcd.data.inputs import InputError
from cmcd.eval.segment_files import Segmenter, has_shipped_segmenter, label_names
from cmcd.modalities import masks
from cmcd.models.dense import predict_masks
from cmcd.train.config import SEGMENTATION_METHODS, SegmentConfig  # noqa: F401 - app.py's list
from cmcd.train.segment import segment_distill
from cmcd.viz.masks import PALETTE, overlay

SHEET_ITEMS = 10  # test items in the Data tab's mask strip, one per class


@once_per_key
def segmenter(pair: str) -> Segmenter:
    """The shipped segmentation student of a pair, loaded once per process."""
    return Segmenter(pair)


def segments(pair_names: list[str]) -> bool:
    """Whether any of these pairs ships a segmentation student (the panel then shows masks)."""
    return any(has_shipped_segmenter(pair) for pair in pair_names)


def legend(dataset: str, present) -> str:
    """Markdown naming the colour of each label in `present` (label numbers)."""
    names = label_names(dataset)
    return " · ".join(f"<span style='color:rgb{tuple(int(c) for c in PALETTE[label])}'>■</span> "
                      f"{names[label]}" for label in sorted(present) if label > 0)


def segment_upload(pair: str, path) -> tuple[np.ndarray | None, str]:
    """The shipped segmentation student's mask over a depth map the visitor uploaded, and a
    caption naming the labels it found (no picture for a pair without a segmentation student)."""
    if not has_shipped_segmenter(pair):
        return None, f"No segmentation student ships for `{pair}`."
    if not path:
        raise InputError("upload a file first")
    model = segmenter(pair)
    sample = model.spec.target.read_file(Path(path))
    result = model.predict(sample)
    mask = np.array(result["mask"])
    shares = ", ".join(f"{name} {share:.0%}" for name, share in result["classes"].items())
    caption = (f"Each pixel labelled with zero depth labels (the teacher's dense head reading the "
               f"student's feature map): **{result['label']}**. Pixels: {shares}. "
               + legend(model.spec.dataset, set(np.unique(mask).tolist())))
    return overlay(model.spec.target.to_picture(sample), mask), caption


def _strip(pictures: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.pad(p, ((2, 2), (2, 2), (0, 0)), constant_values=255) for p in pictures],
                          axis=1)


def mask_sheet(pair: str):
    """The Data tab's masks of a segmentation pair: one test item per class, rows: photos, their
    masks, the depth maps, their masks (None for a pair without masks)."""
    if pair not in masks.SEGMENTATION_PAIRS:
        return None
    seg = masks.load_segmentation(pair)
    test, split = seg.data.test, seg.split("test")
    rows = [int(np.flatnonzero(test.labels.numpy() == label)[0]) for label in range(SHEET_ITEMS)]
    source, target = seg.data.spec.source, seg.data.spec.target
    photos = [(source.to_picture(test.source[r]), split.source_masks[r].numpy()) for r in rows]
    depth = [(target.to_picture(test.target[r]), split.target_masks[r].numpy()) for r in rows]
    blank = np.zeros((32, 32), dtype=int)
    lines = []
    for pictures in (photos, depth):
        lines.append(_strip([overlay(picture, blank, scale=3) for picture, _ in pictures]))
        lines.append(_strip([overlay(picture, mask, 0.8, 3) for picture, mask in pictures]))
    return Image.fromarray(np.concatenate(lines, axis=0))


def metrics_text(m: dict) -> str:
    few = " / ".join(f"{m['miou_few_label'][k]:.3f}" for k in ("1", "5", "10"))
    return (f"| {m['pair']}, {m['loss']}, seed {m['seed']} | test |\n| --- | --- |\n"
            f"| zero-label mIoU (teacher's dense head on your student) | {m['miou_zero_label']:.3f} |\n"
            f"| zero-label pixel accuracy | {m['pixel_acc']:.3f} |\n"
            f"| few-label mIoU, 1 / 5 / 10 labelled maps per class | {few} |\n"
            f"| the teacher's own mIoU on the photos | {m['teacher_miou']:.3f} |\n"
            f"| time (CPU): training, all | {m['train_s']:.0f} s, {m['wall_s']:.0f} s |")


def distill_segmentation(pair: str, method: str, steps: int, seed: int):
    """Distil a segmentation student on the CPU: (metrics as markdown, its mask of a test item)."""
    config = SegmentConfig(pair=pair, method=method, steps=int(steps), seed=int(seed), device="cpu")
    run = segment_distill(config)
    seg = masks.load_segmentation(pair)
    sample = seg.data.test.target[int(np.flatnonzero(seg.data.test.labels.numpy() == 3)[0])]
    mask = predict_masks(run.student, run.head, sample[None])[0][0].numpy()
    return metrics_text(run.metrics), overlay(seg.data.spec.target.to_picture(sample), mask)
