"""The pair registry: which source and target modalities go together, their splits, and the
built tensors, cached on disk.

A pair's items fall into four splits. `test` and `val` (100 items per class each) are disjoint
from everything else; `pairs` are the unlabeled distillation pairs; `teacher` is every
non-held-out item, of which the teacher only ever sees the source image, so it may overlap `pairs`.
Splits are fixed (they do not move with the render seed) so that runs stay comparable.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from cmcd import paths
from cmcd.data import cache
from cmcd.data import sources
from cmcd.data.renderers.depth import render_depth
from cmcd.data.renderers.rgb import render_rgb
from cmcd.data.renderers.sketch import render_sketch

HELD_OUT_PER_CLASS = 100
SPLIT_SEED = 2405_03355
CHUNK = 2048
SPLITS = ("teacher", "pairs", "val", "test")
# Audio clips for each split come from disjoint voices.
VOICE_SPLIT = {"pairs": "train", "val": "val", "test": "test"}


@dataclass(frozen=True)
class PairSpec:
    name: str
    dataset: str
    target: str  # sketch | depth | audio
    pairing: str  # instance: same item in both modalities; class: same class only (AV-MNIST style)
    default_gap: float
    gap_meaning: str


PAIRS = {spec.name: spec for spec in (
    PairSpec("digits-sketch", "digits", "sketch", "instance", 0.3,
             "stroke dropout, wobble and pen irregularity"),
    PairSpec("digits-depth", "digits", "depth", "instance", 0.3,
             "sensor noise, holes and edge dropout"),
    PairSpec("digits-audio", "digits", "audio", "class", 0.3,
             "noise level (SNR 30 dB at 0 down to 0 dB at 1), reverberation, telephone band"),
    PairSpec("fashion-sketch", "fashion", "sketch", "instance", 0.3,
             "stroke dropout, wobble and pen irregularity"),
    PairSpec("fashion-depth", "fashion", "depth", "instance", 0.3,
             "sensor noise, holes and edge dropout"),
)}


def get_spec(name: str) -> PairSpec:
    if name not in PAIRS:
        raise ValueError(f"unknown pair {name!r}; valid pairs: {', '.join(PAIRS)}")
    return PAIRS[name]


def check_gap(gap: float) -> float:
    gap = float(gap)
    if not 0.0 <= gap <= 1.0:
        raise ValueError(f"gap must be a number from 0 (no modality gap) to 1 (widest); got {gap}")
    return gap


@dataclass
class Split:
    ids: torch.Tensor  # (N,) int64 item ids
    labels: torch.Tensor  # (N,) int64
    source: torch.Tensor  # (N, 3, 32, 32) uint8 photo-like images
    target: torch.Tensor | None  # (N, 1, H, W) float32; None for the teacher split

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class PairData:
    spec: PairSpec
    gap: float
    seed: int
    class_names: tuple[str, ...]
    source_origin: str
    teacher: Split
    pairs: Split
    val: Split
    test: Split

    def split(self, name: str) -> Split:
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        return {name: len(self.split(name)) for name in SPLITS}


def split_indices(source: sources.SourceImages) -> dict[str, np.ndarray]:
    """Row indices into `source` for each split; held-out and pair items come from the shipped pool."""
    pool = _shipped_pool(source)
    rng = np.random.default_rng(SPLIT_SEED)
    held_out = {"val": [], "test": []}
    for label in range(len(source.class_names)):
        rows = rng.permutation(pool[source.labels[pool] == label])
        held_out["test"].append(rows[:HELD_OUT_PER_CLASS])
        held_out["val"].append(rows[HELD_OUT_PER_CLASS: 2 * HELD_OUT_PER_CLASS])
    test, val = np.sort(np.concatenate(held_out["test"])), np.sort(np.concatenate(held_out["val"]))
    everything_else = np.setdiff1d(np.arange(len(source.ids)), np.concatenate([test, val]))
    return {"teacher": everything_else, "pairs": np.intersect1d(everything_else, pool),
            "val": val, "test": test}


def _shipped_pool(source: sources.SourceImages) -> np.ndarray:
    """Rows of the items that ship with the repo, so splits agree with or without optional packages."""
    if source.name != "fashion":
        return np.arange(len(source.ids))
    with np.load(paths.source_data("fashion-subset.npz"), allow_pickle=False) as data:
        shipped_ids = data["ids"]
    return np.flatnonzero(np.isin(source.ids, shipped_ids))


def _progress_to_stderr(message: str) -> None:
    print(f"cmcd: {message}", file=sys.stderr, flush=True)


def _in_chunks(render: Callable, images: np.ndarray, ids: np.ndarray) -> torch.Tensor:
    parts = [render(images[i: i + CHUNK], ids[i: i + CHUNK]) for i in range(0, len(ids), CHUNK)]
    return torch.cat(parts)


def render_target(spec: PairSpec, images: np.ndarray, ids: np.ndarray, labels: np.ndarray,
                  split: str, seed: int, gap: float) -> torch.Tensor:
    """The target modality of the given items as float32 (N, 1, H, W)."""
    if spec.target == "sketch":
        strokes = "skeleton" if spec.dataset == "digits" else "outline"
        sketches = _in_chunks(lambda im, i: render_sketch(im, i, seed, gap, strokes), images, ids)
        return sketches.float() / 255.0
    if spec.target == "depth":
        return _in_chunks(lambda im, i: render_depth(im, i, seed, gap), images, ids)
    if spec.target == "audio":
        from cmcd.data.renderers import audio

        return audio.render(torch.from_numpy(labels), torch.from_numpy(ids),
                            VOICE_SPLIT[split], seed, gap)
    raise ValueError(f"no renderer for target modality {spec.target!r}")


def _source_file(dataset: str, origin: str, seed: int):
    tag = "full" if "Debian" in origin else "shipped"
    return paths.cache_dir() / f"source-{dataset}-{tag}-s{seed}.safetensors"


def _target_file(spec: PairSpec, gap: float, seed: int):
    return paths.cache_dir() / f"target-{spec.name}-g{gap:.3f}-s{seed}.safetensors"


def _load_or_build_sources(source: sources.SourceImages, seed: int, progress) -> torch.Tensor:
    path = _source_file(source.name, source.origin, seed)
    if path.exists():
        tensors, _ = cache.load_tensors(path)
        if torch.equal(tensors["ids"], torch.from_numpy(source.ids)):
            return tensors["rgb"]
    progress(f"rendering {len(source.ids):,} {source.name} source photos (seed {seed})")
    started = time.perf_counter()
    rgb = _in_chunks(lambda im, i: render_rgb(im, i, seed), source.images, source.ids)
    cache.save_tensors(path, {"rgb": rgb, "ids": torch.from_numpy(source.ids)},
                       {"origin": source.origin, "seconds": time.perf_counter() - started})
    return rgb


def _load_or_build_targets(spec: PairSpec, source: sources.SourceImages, rows: dict,
                           seed: int, gap: float, progress) -> dict[str, torch.Tensor]:
    path = _target_file(spec, gap, seed)
    if path.exists():
        tensors, _ = cache.load_tensors(path)
        return tensors
    progress(f"rendering {spec.name} {spec.target} targets (gap {gap}, seed {seed})")
    started = time.perf_counter()
    tensors = {}
    for split in VOICE_SPLIT:
        r = rows[split]
        tensors[split] = render_target(spec, source.images[r], source.ids[r], source.labels[r],
                                       split, seed, gap)
        tensors[f"{split}_ids"] = torch.from_numpy(source.ids[r])
    cache.save_tensors(path, tensors, {"pair": spec.name, "gap": gap, "seed": seed,
                                       "seconds": time.perf_counter() - started})
    return tensors


@lru_cache(maxsize=2)
def _source_images(dataset: str) -> sources.SourceImages:
    return sources.load_source(dataset)


def _source_splits(source: sources.SourceImages, rows: dict[str, np.ndarray],
                   rgb: torch.Tensor) -> dict[str, Split]:
    return {split: Split(torch.from_numpy(source.ids[r]), torch.from_numpy(source.labels[r]),
                         rgb[r], None)
            for split, r in rows.items()}


def load_source_splits(dataset: str, seed: int = 0,
                       progress: Callable[[str], None] = _progress_to_stderr) -> dict[str, Split]:
    """The source photos and labels of every split of a dataset (no targets)."""
    source = _source_images(dataset)
    rgb = _load_or_build_sources(source, seed, progress)
    return _source_splits(source, split_indices(source), rgb)


def load_pair(name: str, gap: float | None = None, seed: int = 0,
              progress: Callable[[str], None] = _progress_to_stderr) -> PairData:
    """Build (first time) or load (from the cache) every split of a registered pair."""
    spec = get_spec(name)
    gap = check_gap(spec.default_gap if gap is None else gap)
    source = _source_images(spec.dataset)
    rows = split_indices(source)
    splits = _source_splits(source, rows, _load_or_build_sources(source, seed, progress))
    targets = _load_or_build_targets(spec, source, rows, seed, gap, progress)
    for name_of_split, split in splits.items():
        if name_of_split not in targets:
            continue
        if not torch.equal(targets[f"{name_of_split}_ids"], split.ids):
            raise RuntimeError(f"cached targets of {name} do not match its items; "
                               f"delete {paths.cache_dir()} and build again")
        split.target = targets[name_of_split]
    return PairData(spec, gap, seed, source.class_names, source.origin,
                    *(splits[split] for split in SPLITS))


def split_sizes(name: str) -> dict[str, int]:
    """Items in each split of a pair, without building its data."""
    split_rows = split_indices(_source_images(get_spec(name).dataset))
    return {split: int(len(split_rows[split])) for split in SPLITS}


def describe_pairs() -> list[dict]:
    """What `cmcd pairs` lists: each pair with its modalities and split sizes."""
    rows = []
    for spec in PAIRS.values():
        rows.append({
            "name": spec.name, "dataset": spec.dataset, "source": "rgb", "target": spec.target,
            "pairing": spec.pairing, "default_gap": spec.default_gap, "gap_meaning": spec.gap_meaning,
            "classes": list(_source_images(spec.dataset).class_names),
            "sizes": split_sizes(spec.name),
        })
    return rows
