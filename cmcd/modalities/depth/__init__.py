"""Depth maps: the item's relief as a depth camera sees it (1x32x32 float, 0 = no reading).

A person's depth map (8/16-bit PNG or .npy, larger = farther) has its valid readings rescaled into
the training range and is resized averaging valid readings only; missing readings stay 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cmcd.data import person_files
from cmcd.data.inputs import InputError, check_file, check_image_size, open_image
from cmcd.modalities import augment as augmentations
from cmcd.modalities.base import Modality, Pairing, RenderRequest, TryIt
from cmcd.modalities.depth import junk
from cmcd.modalities.depth.renderer import render_depth
from cmcd.modalities.encoders import ImageEncoder

CANVAS = 32
NEAR, FAR = 0.45, 0.85  # where valid depths land (training scenes: relief about 0.45-0.85)
# Depth of valid readings, measured on 2,000 rendered digits and 2,000 rendered fashion items
# (digits 0.72 +- 0.10, fashion 0.68 +- 0.12).
DEPTH_MEAN = 0.70
DEPTH_STD = 0.11


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


def render(request: RenderRequest) -> torch.Tensor:
    return torch.cat([render_depth(part.images, part.ids, part.seed, part.gap)
                      for part in request.chunks()])


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # erased patches read as missing depth (0)
    shifted = augmentations.random_affine(x, generator, fill=0.0)
    return augmentations.random_erase(shifted, generator, 0.1, value=0.0)


def depth_from_array(depth: np.ndarray) -> torch.Tensor:
    """Raw depth (H, W), 0 = no reading, larger = farther -> (1, 32, 32) in the training range."""
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim == 3 and depth.shape[-1] in (1, 3, 4):
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise InputError(f"a depth map must be a 2-D array; got shape {depth.shape}")
    if depth.size == 0:
        raise InputError(f"the depth map is empty (shape {depth.shape}); it must hold readings")
    if not np.isfinite(depth).all():
        depth = np.where(np.isfinite(depth), depth, 0.0)
    valid = depth > 0
    if valid.mean() < 0.05:
        raise InputError("the depth map has almost no valid readings (values > 0)")
    near, far = depth[valid].min(), depth[valid].max()
    if far - near <= 1e-6 * far:
        raise InputError(f"the depth map is flat: every valid reading is {far:g}, so it shows no "
                         f"shape")
    scaled = np.where(valid, NEAR + (FAR - NEAR) * (depth - near) / (far - near), 0.0)
    values = torch.from_numpy(scaled.astype(np.float32))[None, None]
    mask = torch.from_numpy(valid.astype(np.float32))[None, None]
    # average valid readings only, so holes do not pull depths towards zero
    total = F.interpolate(values, size=(CANVAS, CANVAS), mode="area")
    coverage = F.interpolate(mask, size=(CANVAS, CANVAS), mode="area")
    resized = torch.where(coverage > 0.5, total / coverage.clamp_min(1e-6), torch.zeros(()))
    return resized[0]


NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"  # a .npz archive


def _array_header(path: Path, handle) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a .npy file's header declares, read before its data."""
    try:
        version = np.lib.format.read_magic(handle)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(handle)
    except (ValueError, OSError) as error:
        raise InputError(f"{path.name}: not a readable .npy array ({error})") from None
    return shape, dtype


def load_npy(path: Path) -> np.ndarray:
    """A .npy array of numbers, its header (shape, dtype) checked before its data is read."""
    with open(path, "rb") as handle:
        shape, dtype = _array_header(path, handle)
        if dtype.kind not in "fiu":
            raise InputError(f"{path.name}: a depth map must hold numbers; got {dtype}")
        if len(shape) >= 2:
            check_image_size(shape[1], shape[0], f"{path.name}: the depth map")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise InputError(f"{path.name}: not a readable .npy array ({error})") from None


def load_file(path: Path) -> torch.Tensor:
    """An 8- or 16-bit PNG, or a .npy array of numbers, told apart by their first bytes, not their
    names (an MCP client's upload arrives as file.bin)."""
    path = check_file(path)
    with open(path, "rb") as handle:
        magic = handle.read(len(NPY_MAGIC))
    if magic.startswith(ZIP_MAGIC):
        raise InputError(f"{path.name}: a zip archive (such as a .npz of several arrays), not a depth "
                         f"map; save one array (H, W) with numpy.save as .npy")
    if magic == NPY_MAGIC:
        return depth_from_array(load_npy(path))
    try:
        image = open_image(path)
    except InputError:
        if path.suffix.lower() != ".npy":
            raise
        raise InputError(f"{path.name}: not a .npy array (it does not start with NumPy's header), "
                         f"nor a PNG") from None
    if image.mode not in ("I;16", "I;16B", "I", "L", "F", "LA", "RGB", "RGBA"):
        image = image.convert("L")
    return depth_from_array(np.asarray(image))


def write_files(request: RenderRequest, folder: Path) -> list[Path]:
    """Each depth map as a float .npy array."""
    return [person_files.write_depth(depth[0].numpy(), Path(folder) / f"item-{item_id}")
            for item_id, depth in zip(request.ids.tolist(), render(request), strict=True)]


def to_picture(sample: torch.Tensor) -> np.ndarray:
    """Near is bright, stretched over the valid readings; missing readings in red, as depth
    viewers show them."""
    image = sample[0].float()
    valid = image > 0
    near, far = image[valid].min(), image[valid].max()
    image = torch.where(valid, 0.1 + 0.9 * (far - image) / (far - near).clamp_min(1e-6), 0.0)
    grey = (image.clamp(0, 1) * 255).round().byte()
    rgb = grey[..., None].repeat(1, 1, 3).numpy()
    rgb[grey.numpy() == 0] = (200, 30, 30)
    return rgb


DEPTH = Modality(
    name="depth", render=render, adapter=DepthInput, encoder=ImageEncoder,
    to_picture=to_picture, load_file=load_file, augment=augment,
    gap_meaning="sensor noise, holes and edge dropout",
    try_it=TryIt("Upload a depth map", "file",
                 "Depth map (8/16-bit PNG or .npy; 0 = no reading)",
                 (".png", ".npy", ".bin")),  # .bin: what an MCP client's base64 upload is named
    write_files=write_files, junk=junk.DEPTH_MAPS,
    pairs=(Pairing("digits", "instance"), Pairing("fashion", "instance")))
