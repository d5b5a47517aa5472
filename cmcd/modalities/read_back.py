"""Items and junk the way a person's files are read: rendered, written as the files a person would
give (`Modality.write_files`, `Modality.junk`) and read back through the modality's own file reader,
counting what the reader refuses. Calibration ("not sure", cmcd.eval.confidence) and the benchmarks
of real-looking input use these."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cmcd.data.inputs import InputError
from cmcd.modalities import RenderRequest, pairs


@dataclass
class ReadBack:
    """Inputs as the modality's file reader made them, with their labels or kinds, and how many
    of each kind the reader refused (with a clear error, as it would a person's file)."""

    samples: torch.Tensor | None
    tags: list
    refused: dict = field(default_factory=dict)
    made: dict = field(default_factory=dict)


def read_back(modality, written: list[tuple[object, Path]]) -> ReadBack:
    """Read each (tag, file) with the modality's reader, counting refusals per tag."""
    samples, tags, refused, made = [], [], {}, {}
    for tag, path in written:
        made[tag] = made.get(tag, 0) + 1
        refused.setdefault(tag, 0)
        try:
            samples.append(modality.read_file(path))
            tags.append(tag)
        except InputError:
            refused[tag] += 1
    return ReadBack(torch.stack(samples) if samples else None, tags, refused, made)


def junk_read_back(modality, seed: int, per_kind: int, kinds: tuple[str, ...] | None = None) -> ReadBack:
    """The modality's junk (of every kind, or of `kinds`), written as files and read back; tags are
    junk kinds."""
    with tempfile.TemporaryDirectory(prefix="cmcd-junk-") as folder:
        return read_back(modality, modality.junk.write_files(Path(folder), seed, per_kind, kinds))


def split_request(spec: pairs.PairSpec, split: str, rows: np.ndarray, gap: float,
                  options: dict | None = None, seed: int = 0) -> RenderRequest:
    """A render request for the given rows of a pair's source images (seed 0: as the pair's
    cached data renders them)."""
    source = pairs.source_images(spec.dataset)
    return RenderRequest(source.images[rows], source.ids[rows], source.labels[rows], split, seed, gap,
                         spec.render_options if options is None else options)


def items_read_back(spec: pairs.PairSpec, split: str, rows: np.ndarray, gap: float) -> ReadBack:
    """A split's items rendered, written as a person's files and read back; tags are labels."""
    request = split_request(spec, split, rows, gap)
    with tempfile.TemporaryDirectory(prefix="cmcd-items-") as folder:
        files = spec.target.write_files(request, Path(folder))
        return read_back(spec.target, list(zip(request.labels.tolist(), files, strict=True)))


def spread_rows(spec: pairs.PairSpec, split: str, count: int, seed: int = 0) -> np.ndarray:
    """`count` rows of a split's source images, drawn at random with a fixed seed."""
    rows = pairs.split_indices(pairs.source_images(spec.dataset))[split]
    chosen = np.random.default_rng(seed).permutation(len(rows))[:count]
    return np.sort(rows[chosen])
