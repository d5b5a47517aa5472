"""Encoders: raw modality tensors in, (N, embed_dim) embeddings out.

Every encoder starts with the input adapter of its modality, so a saved encoder is self-contained:
it takes the tensors the pair registry produces (photos as uint8, sketches, depth maps and log-mels
as float32) and needs no preprocessing outside itself. After the adapter comes a stem that halves
the resolution, a small ResNet-style trunk (three stages of basic residual blocks at width, 2*width and 4*width, stride 2
between stages), global average pooling and a linear map to the embedding.

`encoder.config` holds the constructor arguments and the class name, so a checkpoint can rebuild
the architecture with `encoder_from_config(config)`.
"""

from __future__ import annotations

import torch
from torch import nn

# Photo standardisation, measured once on 2,000 rendered digits and 2,000 rendered fashion items
# (channel means 0.37-0.38, standard deviations 0.22) and fixed, so features never depend on a batch.
RGB_MEAN = 0.375
RGB_STD = 0.22
# Depth of valid readings, measured the same way (digits 0.72 +- 0.10, fashion 0.68 +- 0.12).
DEPTH_MEAN = 0.70
DEPTH_STD = 0.11


# ---------------------------------------------------------------------------------------------
# Input adapters: one small module per modality, raw tensor -> float tensor for the stem


class RGBInput(nn.Module):
    """Photos: uint8 (or float already in [0, 1]) -> standardised float."""

    out_channels = 3

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.full((1, 3, 1, 1), RGB_MEAN))
        self.register_buffer("std", torch.full((1, 3, 1, 1), RGB_STD))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return (x - self.mean) / self.std


class SketchInput(nn.Module):
    """Sketches: dark ink on white paper -> ink as positive values on a zero background, so blank
    paper gives zero activations and zero padding at the border looks like paper."""

    out_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 - x.float()


class DepthInput(nn.Module):
    """Depth maps: 0 marks a missing reading, which is not a distance. Two channels: the
    standardised depth with holes filled by the typical depth (0 after standardising), and a
    validity mask, so the network can tell a hole from a near or far surface."""

    out_channels = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        valid = (x > 0).float()
        depth = (x - DEPTH_MEAN) / DEPTH_STD * valid
        return torch.cat([depth, valid], dim=1)


class AudioInput(nn.Module):
    """Log-mels are already standardised by the renderer; passed through as float."""

    out_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


INPUT_ADAPTERS = {"rgb": RGBInput, "sketch": SketchInput, "depth": DepthInput, "audio": AudioInput}


def _check_modality(modality: str) -> None:
    if modality not in INPUT_ADAPTERS:
        raise ValueError(f"unknown modality {modality!r}; valid modalities: {', '.join(INPUT_ADAPTERS)}")


def input_adapter(modality: str) -> nn.Module:
    _check_modality(modality)
    return INPUT_ADAPTERS[modality]()


def prepare(modality: str, x: torch.Tensor) -> torch.Tensor:
    """The float tensor an encoder of `modality` feeds its stem (the adapter applied on its own)."""
    return input_adapter(modality).to(x.device)(x)


# ---------------------------------------------------------------------------------------------
# Building blocks


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size=3, stride=1) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel_size) if isinstance(kernel_size, tuple) else kernel_size // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (He et al. 2016); a 1x1 projection on the
    shortcut when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv_bn_relu(in_channels, out_channels, 3, stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(self.conv1(x))) + self.shortcut(x))


class ResidualTrunk(nn.Module):
    """Three stages of basic blocks at width, 2*width, 4*width (stride 2 between stages), then
    global average pooling: (N, width, H, W) -> (N, 4*width). Any input size works."""

    def __init__(self, width: int, blocks_per_stage: int = 1):
        super().__init__()
        stages, channels = [], width
        for stage, out_channels in enumerate((width, 2 * width, 4 * width)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                stages.append(BasicBlock(channels, out_channels, stride))
                channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x).mean(dim=(2, 3))


# ---------------------------------------------------------------------------------------------
# Encoders


class ImageEncoder(nn.Module):
    """Image-like input -> (N, embed_dim) unnormalised embedding.

    With `modality` set, the modality's input adapter runs first and takes raw tensors;
    `in_channels` must then equal what that adapter produces. Without it, inputs go straight to the
    stem as float (N, in_channels, H, W)."""

    def __init__(self, in_channels: int, width: int = 32, embed_dim: int = 128,
                 modality: str | None = None):
        super().__init__()
        self.adapter = nn.Identity() if modality is None else input_adapter(modality)
        if modality is not None and in_channels != self.adapter.out_channels:
            raise ValueError(f"{modality} input gives {self.adapter.out_channels} channels, "
                             f"not in_channels={in_channels}")
        self.stem = self.make_stem(in_channels, width)
        self.trunk = ResidualTrunk(width)
        self.fc = nn.Linear(self.trunk.out_channels, embed_dim)
        self.embed_dim = embed_dim
        self.config = {"class": type(self).__name__, "modality": modality,
                       "in_channels": in_channels, "width": width, "embed_dim": embed_dim}

    @classmethod
    def for_modality(cls, modality: str, width: int = 32, embed_dim: int = 128) -> ImageEncoder:
        return cls(INPUT_ADAPTERS[modality].out_channels, width, embed_dim, modality)

    def make_stem(self, in_channels: int, width: int) -> nn.Module:
        # Stride 2: the stages then run at 16, 8 and 4 pixels for 32x32 inputs, about four times
        # cheaper than at full resolution; the strided 3x3 still sees every input pixel.
        return conv_bn_relu(in_channels, width, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.trunk(self.stem(self.adapter(x))))


class AudioEncoder(ImageEncoder):
    """Log-mel spectrograms (N, 1, 40 mel bins, 40 frames) -> (N, embed_dim).

    Same residual trunk as the image encoder; only the stem differs. A spectrogram's axes mean
    different things, so the stem first convolves along frequency (5x1: a local spectral shape
    such as a formant) and then along time (1x5: how that shape moves), as in the separable
    frequency/time front ends common for keyword spotting, before the square 3x3 blocks. Each
    halves its own axis, like the image stem's stride 2: 40x40 -> 20x20."""

    def __init__(self, width: int = 32, embed_dim: int = 128, modality: str = "audio"):
        super().__init__(AudioInput.out_channels, width, embed_dim, modality)
        self.config = {"class": type(self).__name__, "modality": modality,
                       "width": width, "embed_dim": embed_dim}

    @classmethod
    def for_modality(cls, modality: str, width: int = 32, embed_dim: int = 128) -> AudioEncoder:
        return cls(width, embed_dim, modality)

    def make_stem(self, in_channels: int, width: int) -> nn.Module:
        return nn.Sequential(
            conv_bn_relu(in_channels, width, (5, 1), stride=(2, 1)),
            conv_bn_relu(width, width, (1, 5), stride=(1, 2)),
        )


ENCODER_FOR_MODALITY = {"rgb": ImageEncoder, "sketch": ImageEncoder, "depth": ImageEncoder,
                        "audio": AudioEncoder}
ENCODER_CLASSES = {cls.__name__: cls for cls in (ImageEncoder, AudioEncoder)}


def build_encoder(modality: str, width: int = 32, embed_dim: int = 128) -> nn.Module:
    """The encoder for raw `modality` tensors: `encoder(x_raw)` -> (N, embed_dim)."""
    _check_modality(modality)
    return ENCODER_FOR_MODALITY[modality].for_modality(modality, width, embed_dim)


def encoder_from_config(config: dict) -> nn.Module:
    """Rebuild an encoder (fresh weights) from its `config`; load a state dict into it after."""
    arguments = dict(config)
    name = arguments.pop("class")
    if name not in ENCODER_CLASSES:
        raise ValueError(f"unknown encoder class {name!r}; valid classes: {', '.join(ENCODER_CLASSES)}")
    return ENCODER_CLASSES[name](**arguments)


class ProjectionHead(nn.Module):
    """The SimCLR projection MLP (Linear, BatchNorm, ReLU, Linear), used during contrastive
    pre-training on top of the encoder and thrown away afterwards."""

    def __init__(self, embed_dim: int = 128, hidden: int = 256, out_dim: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embed_dim, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
