"""Embeddings of many inputs by any encoder: in batches, in eval mode, without gradients."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from cmcd.runtime import autocast


@torch.no_grad()
def embed(encoder: nn.Module, inputs: torch.Tensor, batch_size: int = 1024, normalize: bool = False,
          mixed_precision: bool = True) -> torch.Tensor:
    """(N, d) float32 embeddings of `inputs` on the CPU, computed in batches on the encoder's
    device; `normalize` makes each unit-norm. `mixed_precision`: bf16 on CUDA (the teacher turns
    it off: its embeddings are cached and shared by every run, on any device)."""
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    parts = []
    try:
        for start in range(0, len(inputs), batch_size):
            with autocast(device) if mixed_precision else contextlib.nullcontext():
                batch = encoder(inputs[start: start + batch_size].to(device)).float()
            parts.append((F.normalize(batch, dim=1) if normalize else batch).cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(parts)
