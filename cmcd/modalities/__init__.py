"""Modalities: one folder each (rgb, sketch, depth, audio) holding everything about that kind of
input (its `Modality` record in the folder's __init__, its renderer, people-like ingredients, junk
and file reader/writer), and the registry below. Adding a modality is one new folder plus one line
in `MODALITIES` (its `pairs` register its pairs with the datasets' photos). Beside the
folders: the record (base), the encoder every record names, the batched augmentations, the pair
registry, segmentation masks and the read-back of items and junk as a person's files."""

from __future__ import annotations

from torch import nn

from cmcd.modalities import audio, depth, rgb, sketch
from cmcd.modalities.base import Modality, Pairing, RenderRequest, TryIt
from cmcd.modalities.encoders import ImageEncoder

__all__ = ["MODALITIES", "Modality", "Pairing", "RenderRequest", "TryIt", "build_encoder",
           "encoder_from_config", "get_modality"]

MODALITIES: dict[str, Modality] = {m.name: m for m in (rgb.RGB, sketch.SKETCH, depth.DEPTH,
                                                        audio.AUDIO)}


def get_modality(name: str | Modality) -> Modality:
    if isinstance(name, Modality):
        return name
    if name not in MODALITIES:
        raise ValueError(f"unknown modality {name!r}; valid modalities: {', '.join(MODALITIES)}")
    return MODALITIES[name]


def build_encoder(modality: str | Modality, width: int = 32, embed_dim: int = 128) -> nn.Module:
    """The encoder for raw tensors of `modality`: `encoder(x_raw)` -> (N, embed_dim)."""
    return get_modality(modality).build_encoder(width, embed_dim)


def encoder_from_config(config: dict) -> nn.Module:
    """Rebuild an encoder (fresh weights) from its `config`; load a state dict into it after."""
    if config.get("modality") is None:  # a bare encoder without an input adapter
        return ImageEncoder(config["in_channels"], config["width"], config["embed_dim"])
    encoder = build_encoder(config["modality"], config["width"], config["embed_dim"])
    if type(encoder).__name__ != config["class"]:
        raise ValueError(f"a {config['modality']} encoder is a {type(encoder).__name__}, "
                         f"not a {config['class']}")
    return encoder
