"""Per-item deterministic randomness.

Every render depends only on (item id, seed, stream), never on which other items share the batch,
so a sample looks the same whether it is rendered alone or among thousands. Each item gets its
own generator, seeded by a splitmix64 hash of (item id, seed, stream); the loop runs once per item
to fill that item's whole array, which is much faster than hashing every element.
"""

from __future__ import annotations

import numpy as np
import torch

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _stream_key(seed: int, stream: str) -> int:
    key = _splitmix64(seed & _MASK64)
    for byte in stream.encode():
        key = _splitmix64(key ^ byte)
    return key


def _fill(item_ids, seed: int, stream: str, shape: tuple[int, ...], sampler) -> torch.Tensor:
    ids = np.asarray(item_ids, dtype=np.int64).reshape(-1)
    out = torch.empty((len(ids), *shape), dtype=torch.float32)
    key = _stream_key(seed, stream)
    generator = torch.Generator()
    for row, item in enumerate(ids.tolist()):
        generator.manual_seed(_splitmix64(key ^ (item & _MASK64)) >> 1)
        sampler(shape, generator=generator, out=out[row])
    return out


def uniform(item_ids, seed: int, stream: str, shape: tuple[int, ...] = ()) -> torch.Tensor:
    """Uniform floats in [0, 1), one array of `shape` per item: a tensor of shape (N, *shape)."""
    return _fill(item_ids, seed, stream, shape, torch.rand)


def normal(item_ids, seed: int, stream: str, shape: tuple[int, ...] = ()) -> torch.Tensor:
    """Standard normal floats, one array of `shape` per item: a tensor of shape (N, *shape)."""
    return _fill(item_ids, seed, stream, shape, torch.randn)


def between(item_ids, seed: int, stream: str, low: float, high: float, shape=()) -> torch.Tensor:
    """Uniform floats in [low, high) per item."""
    return low + (high - low) * uniform(item_ids, seed, stream, shape)


def choice(item_ids, seed: int, stream: str, counts) -> torch.Tensor:
    """One integer in [0, counts[i]) per item (counts may be a scalar or one count per item)."""
    counts = torch.as_tensor(counts, dtype=torch.int64)
    picks = (uniform(item_ids, seed, stream) * counts).long()
    return torch.minimum(picks, counts - 1)
