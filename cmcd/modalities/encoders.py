"""Encoders: raw modality tensors in, (N, embed_dim) embeddings out.

Every encoder starts with the input adapter of its modality (each modality module in
cmcd.modalities defines its own), so a saved encoder is self-contained: it takes the tensors the
pair registry produces and needs no preprocessing outside itself. After the adapter comes a stem
that halves the resolution, a small ResNet-style trunk (three stages of basic residual blocks at
width, 2*width and 4*width, stride 2 between stages), global average pooling and a linear map to
the embedding.

`encoder.config` holds the constructor arguments and the class name, so a checkpoint can rebuild
the architecture with `cmcd.modalities.encoder_from_config(config)`.
"""

from __future__ import annotations

import torch
from torch import nn

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

    With an `adapter` (a modality's input adapter, see cmcd.modalities), it runs first and takes
    raw tensors; `in_channels` must then equal what that adapter produces. Without one, inputs go
    straight to the stem as float (N, in_channels, H, W). `modality` names the adapter's modality
    in `config`, so a checkpoint can rebuild the encoder."""

    def __init__(self, in_channels: int, width: int = 32, embed_dim: int = 128,
                 modality: str | None = None, adapter: nn.Module | None = None):
        super().__init__()
        self.adapter = adapter or nn.Identity()
        if adapter is not None and in_channels != adapter.out_channels:
            raise ValueError(f"{modality} input gives {adapter.out_channels} channels, "
                             f"not in_channels={in_channels}")
        self.stem = self.make_stem(in_channels, width)
        self.trunk = ResidualTrunk(width)
        self.fc = nn.Linear(self.trunk.out_channels, embed_dim)
        self.embed_dim = embed_dim
        self.config = {"class": type(self).__name__, "modality": modality,
                       "in_channels": in_channels, "width": width, "embed_dim": embed_dim}

    def make_stem(self, in_channels: int, width: int) -> nn.Module:
        # Stride 2: the stages then run at 16, 8 and 4 pixels for 32x32 inputs, about four times
        # cheaper than at full resolution; the strided 3x3 still sees every input pixel.
        return conv_bn_relu(in_channels, width, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.trunk(self.stem(self.adapter(x))))


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
