"""Per-pixel labels for the segmentation task: 0 for the background, the item's class + 1 elsewhere
(11 classes for digits and for fashion), for the photos and the depth maps of a pair.

A renderer knows which pixels are the item: every modality of an item is drawn from the same
glyph, moved by that modality's own small affine jitter (`geometry.jitter`, stream
`rgb/jitter` for photos, `depth/jitter` for depth maps). A pixel belongs to the item where the
jittered glyph covers at least half of it: the photo blends item and background by coverage
clamp(2.5 · glyph, 0, 1), so where glyph ≥ 0.2. The two jitters are drawn independently, so a
photo and its depth map do not line up pixel for pixel (their masks overlap with IoU about 0.47 on
digits): each gets its own mask.

Dense distillation wants the photo of each pair seen in its target's geometry, as an RGB-D camera
registers its depth map to its colour image; the renderer draws that *registered photo* with
the target's jitter stream (everything else as in the photo). The rendered photos and targets of
the pair registry stay as they are: masks and registered photos live in a cache file of their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cmcd import paths
from cmcd.data import cache, geometry
from cmcd.modalities import depth, pairs, rgb
from cmcd.modalities.depth import renderer as depth_renderer
from cmcd.modalities.rgb import renderer as rgb_renderer

SEGMENTATION_PAIRS = ("digits-depth", "fashion-depth")
NUM_CLASSES = 11  # background and the ten classes of the dataset
ITEM_COVERAGE = 0.2  # glyph value from which a pixel is the item's (half covered in the photo)
JITTER_STREAMS = {rgb.RGB.name: rgb_renderer.JITTER_STREAM, depth.DEPTH.name: depth_renderer.JITTER_STREAM}
HEAD_PHOTOS = 4000  # teacher-split photos (source labels only) that train the dense head
HEAD_SEED = 12  # which teacher-split photos those are; fixed, so every run shares one head
SPLITS = ("pairs", "val", "test")

log = logging.getLogger(__name__)


def item_masks(images: np.ndarray, ids, labels, seed: int, modality: str) -> torch.Tensor:
    """(N, 32, 32) uint8 label maps of items as `modality`'s renderer draws them."""
    if modality not in JITTER_STREAMS:
        raise ValueError(f"no masks for modality {modality!r}; valid: {', '.join(JITTER_STREAMS)}")
    glyph = geometry.jitter(geometry.to_canvas(images), ids, seed, JITTER_STREAMS[modality])[:, 0]
    classes = torch.as_tensor(np.asarray(labels), dtype=torch.uint8) + 1
    return torch.where(glyph >= ITEM_COVERAGE, classes[:, None, None], torch.zeros((), dtype=torch.uint8))


@dataclass
class SegmentationSplit:
    ids: torch.Tensor
    source_masks: torch.Tensor  # (N, 32, 32) uint8, in the photos' geometry
    target_masks: torch.Tensor  # (N, 32, 32) uint8, in the targets' geometry


@dataclass
class SegmentationData:
    """A pair's data (`data`) with the label maps of its pairs, val and test splits, and the
    teacher-split photos and masks that train the teacher's dense head."""

    data: pairs.PairData
    splits: dict[str, SegmentationSplit]
    head_photos: torch.Tensor  # (HEAD_PHOTOS, 3, 32, 32) uint8
    head_masks: torch.Tensor  # (HEAD_PHOTOS, 32, 32) uint8

    def split(self, name: str) -> SegmentationSplit:
        return self.splits[name]


def check_pair(name: str) -> pairs.PairSpec:
    spec = pairs.get_spec(name)
    if spec.name not in SEGMENTATION_PAIRS:
        raise ValueError(f"segmentation needs a pair with item masks; valid: {', '.join(SEGMENTATION_PAIRS)}")
    return spec


def _head_rows(teacher_rows: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(HEAD_SEED)
    return np.sort(rng.permutation(teacher_rows)[:HEAD_PHOTOS])


def _build(spec: pairs.PairSpec, seed: int) -> dict[str, torch.Tensor]:
    source = pairs.source_images(spec.dataset)
    rows = pairs.split_indices(source)
    rows["head"] = _head_rows(rows["teacher"])
    tensors = {}
    for split in (*SPLITS, "head"):
        r = rows[split]
        images, ids, labels = source.images[r], source.ids[r], source.labels[r]
        tensors[f"{split}_ids"] = torch.from_numpy(ids)
        tensors[f"{split}_source_masks"] = item_masks(images, ids, labels, seed, spec.source.name)
        if split != "head":
            tensors[f"{split}_target_masks"] = item_masks(images, ids, labels, seed, spec.target.name)
    return tensors


def _load_or_build(spec: pairs.PairSpec, seed: int, progress) -> dict[str, torch.Tensor]:
    path = paths.cache_dir() / f"masks-{spec.name}-s{seed}.safetensors"
    cached = cache.load_cached(path, progress)
    if cached:
        return cached[0]
    progress(f"drawing {spec.name} item masks (seed {seed})")
    started = time.perf_counter()
    tensors = _build(spec, seed)
    cache.save_tensors(path, tensors, {"pair": spec.name, "seed": seed,
                                       "seconds": time.perf_counter() - started})
    return tensors


def _head_photos(data: pairs.PairData, head_ids: torch.Tensor, seed: int) -> torch.Tensor:
    teacher = pairs.load_source_splits(data.spec.dataset, seed)["teacher"]
    rows = torch.searchsorted(teacher.ids, head_ids)
    if not torch.equal(teacher.ids[rows], head_ids):
        raise RuntimeError("cached masks do not match the teacher split; delete the masks file")
    return teacher.source[rows]


def load_segmentation(name: str, gap: float | None = None, seed: int = 0,
                      progress: Callable[[str], None] = log.info) -> SegmentationData:
    """A segmentation pair: its data (as `pairs.load_pair`) with the masks of every split."""
    spec = check_pair(name)
    data = pairs.load_pair(spec.name, gap=gap, seed=seed, progress=progress)
    tensors = _load_or_build(spec, seed, progress)
    splits = {}
    for split in SPLITS:
        if not torch.equal(tensors[f"{split}_ids"], data.split(split).ids):
            raise RuntimeError(f"cached masks of {name} do not match its items; delete "
                               f"{paths.cache_dir()}/masks-{name}-s{seed}.safetensors")
        splits[split] = SegmentationSplit(*(tensors[f"{split}_{key}"] for key in
                                            ("ids", "source_masks", "target_masks")))
    head_photos = _head_photos(data, tensors["head_ids"], seed)
    return SegmentationData(data, splits, head_photos, tensors["head_source_masks"])


def _render_registered(spec: pairs.PairSpec, ids: torch.Tensor, seed: int) -> torch.Tensor:
    source = pairs.source_images(spec.dataset)
    rows = np.searchsorted(source.ids, ids.numpy())
    return rgb_renderer.render_rgb(source.images[rows], source.ids[rows], seed,
                                   JITTER_STREAMS[spec.target.name])


def registered_photos(seg: SegmentationData, rows: torch.Tensor | None = None,
                      progress: Callable[[str], None] = log.info) -> torch.Tensor:
    """(N, 3, 32, 32) uint8 photos of the pairs split drawn in the target's geometry: all of them
    (cached on disk) or, given `rows`, those rows only (drawn now)."""
    spec, seed, ids = seg.data.spec, seg.data.seed, seg.data.pairs.ids
    if rows is not None:
        return _render_registered(spec, ids[rows], seed)
    path = paths.cache_dir() / f"registered-{spec.name}-s{seed}.safetensors"
    cached = cache.load_cached(path, progress)
    if cached and torch.equal(cached[0]["ids"], ids):
        return cached[0]["photos"]
    progress(f"drawing {len(ids):,} {spec.name} photos in the {spec.target} geometry (seed {seed})")
    photos = _render_registered(spec, ids, seed)
    cache.save_tensors(path, {"photos": photos, "ids": ids}, {"pair": spec.name, "seed": seed})
    return photos
