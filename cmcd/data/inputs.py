"""What every reader of a person's file shares: size limits, image opening, and `InputError`.

The modality modules (cmcd.modalities) turn files into their training domain; every problem is an
InputError (a ValueError) whose message is one sentence a person understands.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_SIDE = 4096


class InputError(ValueError):
    """A file that cannot be classified, with a one-line reason."""


def check_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path.name}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name}: the file is empty")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path.name}: the file is {size / 1e6:.0f} MB; the limit is "
                         f"{MAX_FILE_BYTES / 1e6:.0f} MB")
    return path


def open_image(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise InputError(f"{path.name}: not a readable image ({type(error).__name__})") from None
    if max(image.size) > MAX_IMAGE_SIDE:
        raise InputError(f"{path.name}: the image is {image.width}x{image.height}; the limit is "
                         f"{MAX_IMAGE_SIDE} pixels a side")
    return image
