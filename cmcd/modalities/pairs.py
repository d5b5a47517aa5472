"""The pair registry: which source and target modalities go together (each target modality's
record lists its datasets, `Modality.pairs`), their splits, and the built tensors, cached on disk.

A pair's items fall into four splits. `test` and `val` (100 items per class each) are disjoint
from everything else; `pairs` are the unlabeled distillation pairs; `teacher` is every
non-held-out item, of which the teacher only ever sees the source image, so it may overlap `pairs`.
Splits are fixed (they do not move with the render seed) so that runs stay comparable.

For ablations, `PAIR-without-A+B` names a variant of a registered pair whose distillation pairs
are rendered without the renderer's ingredients A and B (`PairSpec.ingredients`); its validation
and test splits are the full pair's, so variants are scored on the same items. A pair with real
people's recordings (digits-audio) has variants `PAIR-real-PERCENT` (that share of the training
pairs spoken by real people) and `PAIR-heldout-SPEAKER` (that speaker left out of training, to be
measured on), alone or together (`digits-audio-real-50-heldout-jackson`), and `PAIR-recorded`, a
pair of its own whose every split is real recordings: each split's clips come from its own real
speakers (`recorded_splits` of the pair's render options), as they were recorded (gap 0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from cmcd import paths
from cmcd.data import cache, sources
from cmcd.modalities import MODALITIES, Modality, Pairing, RenderRequest, rgb

HELD_OUT_PER_CLASS = 100
SPLIT_SEED = 2405_03355
SPLITS = ("teacher", "pairs", "val", "test")
TARGET_SPLITS = ("pairs", "val", "test")  # the teacher split has source photos only
SOURCE = rgb.RGB  # every dataset's source modality: photo-like renders, what teachers see

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PairSpec:
    name: str
    dataset: str
    target: Modality
    pairing: str  # instance: same item in both modalities; class: same class only (AV-MNIST style)
    default_gap: float = 0.3
    render_options: dict = field(default_factory=dict)  # passed to the target's renderer
    source: Modality = SOURCE
    ingredients: tuple[str, ...] = ()  # what the renderer's `without` option may leave out
    base: str | None = None  # a variant's full pair, whose validation and test splits it shares

    @property
    def gap_meaning(self) -> str:
        return self.target.gap_meaning


class _Registry(Mapping):
    """The registered pairs, name -> PairSpec: every registered modality's `pairs`, listed dataset by
    dataset in the order of the modalities; read from `MODALITIES` on each use, so registering a
    modality registers its pairs. Each spec is made once and stays the same object."""

    def __init__(self):
        self._made: dict[tuple[Modality, str], PairSpec] = {}

    def _spec(self, modality: Modality, pairing: Pairing) -> PairSpec:
        key = (modality, pairing.dataset)
        if key not in self._made:
            self._made[key] = PairSpec(f"{pairing.dataset}-{modality.name}", pairing.dataset, modality,
                                       pairing.pairing, pairing.default_gap, dict(pairing.render_options),
                                       ingredients=pairing.ingredients)
        return self._made[key]

    def _specs(self) -> dict[str, PairSpec]:
        datasets = list(sources.LOADERS)
        found = [self._spec(modality, pairing) for modality in MODALITIES.values()
                 for pairing in modality.pairs]
        return {spec.name: spec for spec in sorted(found, key=lambda spec: datasets.index(spec.dataset))}

    def __getitem__(self, name: str) -> PairSpec:
        return self._specs()[name]

    def __iter__(self):
        return iter(self._specs())

    def __len__(self) -> int:
        return len(self._specs())


PAIRS = _Registry()
WITHOUT = "-without-"
REAL = "-real-"
HELD_OUT = "-heldout-"
RECORDED = "-recorded"


def get_spec(name: str) -> PairSpec:
    """A registered pair, or a variant of one named `PAIR-without-A+B` (see the module doc)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"no pair given ({name!r}); choose one of {', '.join(PAIRS)}")
    base, mark, left_out = name.partition(WITHOUT)
    if mark and base in PAIRS:
        return _variant(base, tuple(left_out.split("+")))
    if name.endswith(RECORDED) and name[: -len(RECORDED)] in PAIRS:
        return _recorded_variant(name[: -len(RECORDED)])
    mixed, held_out, speaker = name.partition(HELD_OUT)
    base, real, percent = mixed.partition(REAL)
    if (held_out or real) and base in PAIRS and "real_share" in PAIRS[base].render_options:
        return _people_variant(base, percent or None, speaker or None)
    if name not in PAIRS:
        raise ValueError(f"unknown pair {name!r}; valid pairs: {', '.join(PAIRS)} "
                         f"(or PAIR{WITHOUT}INGREDIENT for an ablation)")
    return PAIRS[name]


@lru_cache(maxsize=64)
def _variant(base: str, left_out: tuple[str, ...]) -> PairSpec:
    full = PAIRS[base]
    unknown = [name for name in left_out if name not in full.ingredients]
    if unknown:
        raise ValueError(f"{base} has no ingredient {unknown[0]!r} to leave out; its ingredients: "
                         f"{', '.join(full.ingredients) or 'none'}")
    if len(set(left_out)) != len(left_out):
        raise ValueError(f"{base}: an ingredient is listed twice in {'+'.join(left_out)!r}")
    ordered = tuple(name for name in full.ingredients if name in left_out)
    return dataclasses.replace(full, name=f"{base}{WITHOUT}{'+'.join(ordered)}", base=base,
                               render_options={**full.render_options, "without": ordered})


@lru_cache(maxsize=64)
def _people_variant(base: str, percent: str | None, held_out: str | None) -> PairSpec:
    """`PAIR-real-PERCENT-heldout-SPEAKER` (either part alone too): PERCENT % of the training pairs
    spoken by real people, SPEAKER not among them; validation and test are the pair's own."""
    full = PAIRS[base]
    options = dict(full.render_options)
    if percent is not None:
        if not percent.isdigit() or int(percent) > 100:
            raise ValueError(f"{base}{REAL}{percent}: the share of real voices is a whole percent, 0 to 100")
        options["real_share"] = int(percent) / 100
    if held_out is not None:
        if held_out not in options["real_speakers"]:
            raise ValueError(f"{base} has no real speaker {held_out!r} to hold out; its speakers: "
                             f"{', '.join(options['real_speakers'])}")
        options["real_speakers"] = tuple(name for name in options["real_speakers"] if name != held_out)
    name = base + (f"{REAL}{percent}" if percent is not None else "") + (
        f"{HELD_OUT}{held_out}" if held_out is not None else "")
    return dataclasses.replace(full, name=name, base=base, render_options=options)


@lru_cache(maxsize=8)
def _recorded_variant(base: str) -> PairSpec:
    """`PAIR-recorded`: every split spoken by real people, each split by speakers of its own, as
    recorded (gap 0); its validation and test splits are its own, not the base pair's."""
    full = PAIRS[base]
    if "recorded_splits" not in full.render_options:
        raise ValueError(f"{base} has no real recordings for a {base}{RECORDED} pair")
    return dataclasses.replace(full, name=f"{base}{RECORDED}", default_gap=0.0, ingredients=(),
                               render_options={**full.render_options, "real_share": 1.0, "recorded": True})


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
    first_added = len(source.ids) - source.added
    held_out = {"val": [], "test": []}
    # items added to a dataset are split on their own, so the original items' splits never move
    groups = ((pool[pool < first_added], HELD_OUT_PER_CLASS, SPLIT_SEED),
              (pool[pool >= first_added], sources.ADDED_HELD_OUT_PER_CLASS, SPLIT_SEED + 1))
    for rows, per_class, seed in groups:
        rng = np.random.default_rng(seed)
        for label in range(len(source.class_names)) if len(rows) else ():
            of_class = rng.permutation(rows[source.labels[rows] == label])
            held_out["test"].append(of_class[:per_class])
            held_out["val"].append(of_class[per_class: 2 * per_class])
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


def render_target(spec: PairSpec, source: sources.SourceImages, rows: np.ndarray, split: str,
                  seed: int, gap: float) -> torch.Tensor:
    """The target modality of the given rows of a source, as the pair stores it."""
    request = RenderRequest(source.images[rows], source.ids[rows], source.labels[rows], split, seed,
                            gap, spec.render_options)
    return spec.target.render(request)


def _source_file(dataset: str, origin: str, seed: int):
    tag = "full" if "Debian" in origin else "shipped"
    return paths.cache_dir() / f"source-{dataset}-{tag}-s{seed}.safetensors"


def _target_file(spec: PairSpec, gap: float, seed: int):
    """A pair's cached targets; named by its render options too, so that changing one (the share of
    real voices, say) renders anew instead of reading the targets of the old setting."""
    options = ""
    if spec.render_options:
        text = json.dumps(spec.render_options, sort_keys=True)
        options = "-o" + hashlib.sha256(text.encode()).hexdigest()[:10]
    return paths.cache_dir() / f"target-{spec.name}-g{gap:.3f}-s{seed}{options}.safetensors"


def _load_or_build_sources(source: sources.SourceImages, seed: int, progress) -> torch.Tensor:
    path = _source_file(source.name, source.origin, seed)
    cached = cache.load_cached(path, progress)
    if cached and torch.equal(cached[0]["ids"], torch.from_numpy(source.ids)):
        return cached[0][SOURCE.name]
    progress(f"rendering {len(source.ids):,} {source.name} source photos (seed {seed})")
    started = time.perf_counter()
    photos = SOURCE.render(RenderRequest(source.images, source.ids, source.labels, "teacher",
                                         seed, 0.0))
    cache.save_tensors(path, {SOURCE.name: photos, "ids": torch.from_numpy(source.ids)},
                       {"origin": source.origin, "seconds": time.perf_counter() - started})
    return photos


def _load_or_build_targets(spec: PairSpec, source: sources.SourceImages, rows: dict,
                           seed: int, gap: float, progress) -> dict[str, torch.Tensor]:
    """A pair's target splits; a variant's validation and test splits are its full pair's."""
    held_out = {}
    if spec.base is not None:
        full = _load_or_build_targets(get_spec(spec.base), source, rows, seed, gap, progress)
        held_out = {key: value for key, value in full.items() if not key.startswith("pairs")}
    path = _target_file(spec, gap, seed)
    cached = cache.load_cached(path, progress)
    if cached:
        return {**held_out, **cached[0]}
    progress(f"rendering {spec.name} {spec.target} targets (gap {gap}, seed {seed})")
    started = time.perf_counter()
    tensors = {}
    for split in ("pairs",) if held_out else TARGET_SPLITS:
        tensors[split] = render_target(spec, source, rows[split], split, seed, gap)
        tensors[f"{split}_ids"] = torch.from_numpy(source.ids[rows[split]])
    cache.save_tensors(path, tensors, {"pair": spec.name, "gap": gap, "seed": seed,
                                       "seconds": time.perf_counter() - started})
    return {**held_out, **tensors}


@lru_cache(maxsize=2)
def source_images(dataset: str) -> sources.SourceImages:
    """A dataset's real source images, loaded once per process."""
    return sources.load_source(dataset)


def _source_splits(source: sources.SourceImages, rows: dict[str, np.ndarray],
                   photos: torch.Tensor) -> dict[str, Split]:
    return {split: Split(torch.from_numpy(source.ids[r]), torch.from_numpy(source.labels[r]),
                         photos[r], None)
            for split, r in rows.items()}


def load_source_splits(dataset: str, seed: int = 0,
                       progress: Callable[[str], None] = log.info) -> dict[str, Split]:
    """The source photos and labels of every split of a dataset (no targets)."""
    source = source_images(dataset)
    photos = _load_or_build_sources(source, seed, progress)
    return _source_splits(source, split_indices(source), photos)


def load_pair(name: str, gap: float | None = None, seed: int = 0,
              progress: Callable[[str], None] = log.info) -> PairData:
    """Build (first time) or load (from the cache) every split of a registered pair."""
    spec = get_spec(name)
    gap = check_gap(spec.default_gap if gap is None else gap)
    source = source_images(spec.dataset)
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
    split_rows = split_indices(source_images(get_spec(name).dataset))
    return {split: int(len(split_rows[split])) for split in SPLITS}


def describe_pairs() -> list[dict]:
    """What `cmcd pairs` lists: each pair with its modalities and split sizes."""
    rows = []
    for spec in PAIRS.values():
        rows.append({
            "name": spec.name, "dataset": spec.dataset, "source": spec.source.name,
            "target": spec.target.name,
            "pairing": spec.pairing, "default_gap": spec.default_gap, "gap_meaning": spec.gap_meaning,
            "classes": list(source_images(spec.dataset).class_names),
            "sizes": split_sizes(spec.name),
        })
    return rows
