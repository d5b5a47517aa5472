"""The dense teacher: the frozen source encoder's hypercolumns and a dense head trained on the
source photos' masks (source labels only, as for the classification head), both cached on disk.

The head is a 1x1 convolution over the normalised hypercolumns, trained with per-pixel cross
entropy on its logits upsampled to 32x32. It is trained once per (teacher weights, dataset,
render seed, steps) on `masks.HEAD_PHOTOS` teacher-split photos, and every segmentation run of the
dataset reads the same head. The teacher's dense embeddings of a pair's photos (registered or not)
are computed once too (for the pairs split, the only one distillation reads) and kept as
float16.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cmcd import paths, runtime
from cmcd.data import cache
from cmcd.modalities import masks
from cmcd.models.dense import DenseHead, feature_map, upsample_logits
from cmcd.models.init import initialise
from cmcd.models.teacher import Teacher, load_teacher, teacher_digest
from cmcd.train.loop import BatchSampler, LoopSettings, train_loop, warmup_cosine

HEAD_STEPS = 600
HEAD_BATCH = 64
HEAD_LR = 0.05

log = logging.getLogger(__name__)


class TeacherFeatures(nn.Module):
    """Photos -> the teacher's raw hypercolumns, or with a head its dense embeddings (the head's
    standardisation, then unit vectors per location)."""

    def __init__(self, encoder: nn.Module, head: DenseHead | None = None):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, photos: torch.Tensor) -> torch.Tensor:
        raw = feature_map(self.encoder, photos)
        return raw if self.head is None else self.head.embed(raw)


@dataclass
class DenseTeacher:
    teacher: Teacher
    head: DenseHead
    variant: str

    @property
    def features(self) -> TeacherFeatures:
        return TeacherFeatures(self.teacher.encoder, self.head).eval()


@torch.no_grad()
def batched(module: nn.Module, inputs: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """module(inputs) in eval mode, in batches on the module's device, as float32 on the CPU."""
    device = next(module.parameters()).device
    module.eval()
    return torch.cat([module(inputs[start: start + batch_size].to(device)).float().cpu()
                      for start in range(0, len(inputs), batch_size)])


def train_dense_head(encoder: nn.Module, photos: torch.Tensor, label_maps: torch.Tensor,
                     steps: int = HEAD_STEPS, seed: int = 0, device: str = "cpu") -> DenseHead:
    """A dense head for a frozen encoder from photos and their (N, 32, 32) label maps."""
    device = runtime.resolve_device(device)
    raw = batched(TeacherFeatures(encoder), photos)
    head = DenseHead(raw.shape[1], masks.NUM_CLASSES)
    initialise(head, torch.Generator().manual_seed(seed))
    head.fit_standardisation(raw)
    embedded, targets = head.embed(raw).to(device), label_maps.long().to(device)
    head.to(device)
    generator = runtime.generator(device, seed)

    def step(index: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = upsample_logits(head.classify(embedded[index]))
        return {"ce": F.cross_entropy(logits.float(), targets[index])}

    sampler = BatchSampler(len(photos), HEAD_BATCH, generator)
    settings = LoopSettings([head], HEAD_LR, weight_decay=0.0, device=device, max_steps=steps,
                            lr_factor=warmup_cosine(steps))
    train_loop(step, sampler, math.ceil(steps / len(sampler)), settings)
    return head.cpu().eval().requires_grad_(False)


def load_dense_teacher(seg: masks.SegmentationData, variant: str = "ft", steps: int = HEAD_STEPS,
                       progress: Callable[[str], None] = log.info) -> DenseTeacher:
    """The dataset's frozen teacher with its dense head, trained on first use and cached."""
    dataset, seed = seg.data.spec.dataset, seg.data.seed
    teacher = load_teacher(dataset, variant)
    path = paths.cache_dir() / (f"dense-head-{dataset}-{variant}-{teacher_digest(dataset, variant)}"
                                f"-s{seed}-{steps}.safetensors")
    head = DenseHead(feature_map(teacher.encoder, seg.head_photos[:2]).shape[1], masks.NUM_CLASSES)
    cached = cache.load_cached(path, progress)
    if cached:
        head.load_state_dict(cached[0])
    else:
        progress(f"training the {dataset} {variant} teacher's dense head ({steps} steps)")
        head = train_dense_head(teacher.encoder, seg.head_photos, seg.head_masks, steps)
        cache.save_tensors(path, head.state_dict(), {"teacher": variant, "steps": steps})
    return DenseTeacher(teacher, head.eval().requires_grad_(False), variant)


def teacher_dense_embeddings(seg: masks.SegmentationData, teacher: DenseTeacher, registered: bool,
                             device: torch.device, rows: torch.Tensor | None = None) -> torch.Tensor:
    """float16 (N, C, 8, 8) dense embeddings of the pairs split's photos (`registered`: drawn in
    the target's geometry): all of them, cached on disk, or, given `rows`, those rows only."""
    if rows is not None:
        photos = (masks.registered_photos(seg, rows) if registered else seg.data.pairs.source[rows])
        return _embed(teacher, photos, device)
    head_digest = cache.tensors_checksum(teacher.head.state_dict())[:16]
    kind = "registered" if registered else "photos"
    path = paths.cache_dir() / (f"dense-emb-{seg.data.spec.name}-{teacher.variant}-{head_digest}"
                                f"-{kind}-s{seg.data.seed}.safetensors")
    cached = cache.load_cached(path)
    if cached:
        return cached[0]["pairs"]
    photos = masks.registered_photos(seg) if registered else seg.data.pairs.source
    embeddings = _embed(teacher, photos, device)
    cache.save_tensors(path, {"pairs": embeddings}, {"teacher": teacher.variant, "kind": kind})
    return embeddings


def _embed(teacher: DenseTeacher, photos: torch.Tensor, device: torch.device) -> torch.Tensor:
    features = teacher.features.to(device)
    try:
        return batched(features, photos).half()
    finally:
        features.cpu()
