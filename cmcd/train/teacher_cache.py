"""The frozen teacher's embeddings of a pair's photos, computed once and cached on disk."""

from __future__ import annotations

import torch

from cmcd import paths
from cmcd.data import cache
from cmcd.modalities import pairs
from cmcd.models.teacher import Teacher, teacher_digest


def teacher_embeddings(data: pairs.PairData, variant: str, teacher: Teacher,
                       device: torch.device) -> dict[str, torch.Tensor]:
    """Normalised teacher embeddings of the pairs, val and test source photos (CPU tensors),
    computed once per (teacher weights, dataset, render seed) and cached on disk."""
    digest = teacher_digest(data.spec.dataset, variant)
    path = paths.cache_dir() / f"teacher-emb-{data.spec.dataset}-{variant}-{digest}-s{data.seed}.safetensors"
    cached = cache.load_cached(path)
    if cached:
        return cached[0]
    teacher.to(device)
    embeddings = {split: teacher.embed(data.split(split).source).cpu()
                  for split in ("pairs", "val", "test")}
    teacher.to("cpu")
    cache.save_tensors(path, embeddings, {"teacher": variant, "digest": digest})
    return embeddings

