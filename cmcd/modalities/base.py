"""What CMCD knows about one kind of input, in one record: how to render it from a real image, the
encoder that reads it, its training augmentation, how to read a person's file, how to draw it as
a picture, and what the app asks a visitor for."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cmcd.data.inputs import InputError
from cmcd.data.junk import JunkKinds


@dataclass(frozen=True)
class RenderRequest:
    """Items to render, each keyed by (item id, seed) so it renders the same alone or in a batch."""

    images: np.ndarray  # (N, 28, 28) uint8 real grey images the items come from
    ids: np.ndarray  # (N,) int64 item ids
    labels: np.ndarray  # (N,) int64 classes
    split: str  # "teacher", "pairs", "val" or "test"
    seed: int
    gap: float  # 0: no modality gap .. 1: the widest
    options: Mapping[str, object] = field(default_factory=dict)  # the pair's rendering options

    def chunks(self, size: int = 2048):
        """The same request cut into pieces of at most `size` items (bounded memory)."""
        for start in range(0, len(self.ids), size):
            rows = slice(start, start + size)
            yield RenderRequest(self.images[rows], self.ids[rows], self.labels[rows], self.split,
                                self.seed, self.gap, self.options)


@dataclass(frozen=True)
class TryIt:
    """How the app's Try-it tab asks for this modality."""

    title: str  # the panel's heading, e.g. "Draw a sketch"
    widget: str  # "sketchpad", "file" or "recorder"
    label: str  # the input's label
    file_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pairing:
    """A dataset whose photos this modality is paired with, registered as the pair DATASET-NAME:
    instance pairs (the same item in both) or class pairs (the same class only, AV-MNIST style),
    the renderer's options for it and the people-like ingredients an ablation may leave out."""

    dataset: str
    pairing: str  # "instance" or "class"
    render_options: Mapping[str, object] = field(default_factory=dict)
    ingredients: tuple[str, ...] = ()  # what the renderer's `without` option may leave out
    default_gap: float = 0.3


@dataclass(frozen=True, eq=False)
class Modality:
    name: str
    render: Callable[[RenderRequest], torch.Tensor]  # -> (N, C, H, W), the tensors pairs store
    adapter: type[nn.Module]  # raw tensor -> float tensor for the encoder's stem
    encoder: type[nn.Module]  # an ImageEncoder class: adapter, stem, residual trunk, linear map
    to_picture: Callable[[torch.Tensor], np.ndarray]  # one sample (C, H, W) -> (H, W, 3) uint8
    load_file: Callable[[Path], torch.Tensor] | None = None  # a person's file -> one sample
    read_drawing: Callable[[np.ndarray], torch.Tensor] | None = None  # grey (H, W) -> one sample
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None  # training
    gap_meaning: str = ""  # what the renderer's `gap` knob changes
    try_it: TryIt | None = None
    real_samples: Callable[[], tuple[torch.Tensor, torch.Tensor] | None] | None = None
    # real-world samples with labels (evaluation only), or None when not installed
    write_files: Callable[[RenderRequest, Path], list[Path]] | None = None
    # the request's items rendered and written into a folder as a person's files (one per item,
    # in order), so checks can see what load_file makes of real items
    junk: JunkKinds | None = None  # inputs that show no class, as files: what "not sure" must catch
    pairs: tuple[Pairing, ...] = ()  # the datasets it is paired with (cmcd.modalities.pairs)

    def __str__(self) -> str:
        return self.name

    def build_encoder(self, width: int = 32, embed_dim: int = 128) -> nn.Module:
        """An encoder that takes this modality's raw tensors: `encoder(x)` -> (N, embed_dim)."""
        adapter = self.adapter()
        return self.encoder(adapter.out_channels, width, embed_dim, modality=self.name, adapter=adapter)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The float tensor an encoder of this modality feeds its stem (the adapter on its own)."""
        return self.adapter().to(x.device)(x)

    def read_file(self, path: Path) -> torch.Tensor:
        """A person's file -> one sample ready for the student, or InputError saying why not."""
        if self.load_file is None:
            raise InputError(f"files of modality {self.name!r} cannot be classified")
        return self.load_file(Path(path))

    def read_drawing_of(self, grey: np.ndarray) -> torch.Tensor:
        """A drawing made in the app, greyscale (H, W) in [0, 1] -> one sample, or InputError."""
        if self.read_drawing is None:
            raise InputError(f"modality {self.name!r} takes no drawings")
        return self.read_drawing(grey)
