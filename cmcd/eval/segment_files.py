"""Step 3 for segmentation with zero target labels: a dense student and the teacher's dense head
label every pixel of a person's target file (`cmcd classify --task segmentation`, the app's
Try-it depth panel)."""

from __future__ import annotations

from pathlib import Path

import torch

from cmcd.data.inputs import results_per_file
from cmcd.data.sources import CLASS_NAMES
from cmcd.modalities import masks
from cmcd.models.dense import load_segmenter, predict_masks
from cmcd.paths import checkpoint_root


def segmenter_stem(pair: str, run_dir: Path | None = None) -> Path:
    """The segmentation student of a run folder, or the one shipped for the pair."""
    return Path(run_dir) / "student" if run_dir else checkpoint_root() / f"segmenter-{pair}"


def has_shipped_segmenter(pair: str) -> bool:
    stem = segmenter_stem(pair)
    return stem.with_suffix(".safetensors").exists() and stem.with_suffix(".json").exists()


def label_names(dataset: str) -> tuple[str, ...]:
    """The name of each label of a mask: background, then the dataset's classes."""
    return ("background", *CLASS_NAMES[dataset])


class Segmenter:
    """A segmentation student plus the dense head that reads it, loaded once."""

    def __init__(self, pair: str, run_dir: Path | None = None):
        self.spec = masks.check_pair(pair)
        stem = segmenter_stem(pair, run_dir)
        self.student, self.head, self.metadata = load_segmenter(stem)
        if self.metadata.get("pair") != pair:
            raise ValueError(f"the segmentation student at {stem} was trained for "
                             f"{self.metadata.get('pair')!r}, not {pair!r}")
        self.names = label_names(self.spec.dataset)

    def predict(self, sample: torch.Tensor) -> dict:
        """One target sample (1, 32, 32) -> {"label": the item's class (most of its pixels),
        "classes": {label: share of the pixels}, "mask": 32 rows of 32 labels (0: background)}."""
        labels, _ = predict_masks(self.student, self.head, sample[None])
        mask = labels[0]
        counts = torch.bincount(mask.flatten(), minlength=len(self.names))
        item = counts[1:].argmax() + 1 if counts[1:].sum() else 0
        return {"label": self.names[int(item)],
                "classes": {self.names[c]: round(float(n) / mask.numel(), 4)
                            for c, n in enumerate(counts.tolist()) if n},
                "mask": mask.tolist()}

    def predict_file(self, path: Path) -> dict:
        return self.predict(self.spec.target.read_file(path))


def segment_files(pair: str, files: list[Path], run_dir: Path | None = None) -> list[dict]:
    """One entry per file, in order: {"file", "label", "classes", "mask"} or {"file", "error"}."""
    segmenter = Segmenter(pair, run_dir)
    return results_per_file(files, segmenter.predict_file)
