"""Initial weights drawn from an explicit generator, so a run's starting point depends on its own
seed and never on (or disturbs) the process-wide random state another thread may be using.

`initialise` mirrors PyTorch's default initialisation: Kaiming-uniform weights (a = sqrt(5)) and
uniform biases in ±1/sqrt(fan_in) for convolutions and linear maps, weight 1 and bias 0 for
batch norms.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _initialise_weighted(layer: nn.Module, generator: torch.Generator) -> None:
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        fan_in = layer.weight[0].numel()  # input channels (per group) x kernel size
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def _initialise_norm(layer: nn.Module) -> None:
    if layer.affine:
        nn.init.ones_(layer.weight)
        nn.init.zeros_(layer.bias)
    layer.reset_running_stats()


def _trainable(layer: nn.Module) -> bool:
    return all(p.requires_grad for p in layer.parameters(recurse=False))


@torch.no_grad()
def initialise(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw the weights of every convolution, linear map and batch norm inside `module` from
    `generator`, in module order; returns `module`. Frozen layers (a teacher's head inside an
    objective) are left as they are."""
    for layer in module.modules():
        if isinstance(layer, _WEIGHTED) and _trainable(layer):
            _initialise_weighted(layer, generator)
        elif isinstance(layer, _NORMS) and _trainable(layer):
            _initialise_norm(layer)
    return module
