"""What every reader of a person's file shares: size limits, image opening, and `InputError`.

The modality modules (cmcd.modalities) turn files into their training domain; every problem is an
InputError (a ValueError) whose message is one sentence a person understands.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MEBIBYTE = 1024 * 1024  # Gradio's "mb", as in the app's max_file_size="20mb"
MAX_FILE_BYTES = 20 * MEBIBYTE
MAX_IMAGE_SIDE = 4096


class InputError(ValueError):
    """A file that cannot be classified, with a one-line reason."""


def results_per_file(files: list, predict_file: Callable[[Path], dict]) -> list[dict]:
    """One entry per file, in order: {"file", **predict_file(path)} or {"file", "error"}."""
    results = []
    for path in files:
        try:
            results.append({"file": str(path), **predict_file(path)})
        except InputError as error:
            results.append({"file": str(path), "error": str(error)})
        except Exception as error:  # whatever goes wrong with one file, the others get results
            results.append({"file": str(path), "error": f"{Path(path).name}: could not be read "
                                                         f"({type(error).__name__})"})
    return results


def check_file(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path.name} is a folder, not a file")
    if not path.is_file():
        raise InputError(f"{path.name}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name}: the file is empty")
    if size > MAX_FILE_BYTES:
        # rounded up, so a file just over the limit never reads as the limit itself
        raise InputError(f"{path.name}: the file is {math.ceil(size / MEBIBYTE * 10) / 10:.1f} MB; "
                         f"the limit is {MAX_FILE_BYTES // MEBIBYTE} MB")
    return path


def check_image_size(width: int, height: int, what: str) -> None:
    if max(width, height) > MAX_IMAGE_SIDE:
        raise InputError(f"{what} is {width}x{height} pixels; the limit is {MAX_IMAGE_SIDE} pixels "
                         f"a side")


def _unreadable(path: Path, error: Exception) -> InputError:
    return InputError(f"{path.name}: not a readable image ({type(error).__name__})")


def _open_header(path: Path) -> Image.Image:
    """The image in `path` with only its header read (PIL decodes lazily)."""
    try:
        with warnings.catch_warnings():
            # PIL warns of sizes far beyond our own limit, which open_image checks
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError:
        raise InputError(f"{path.name}: the image is far larger than the limit of {MAX_IMAGE_SIDE} "
                         f"pixels a side") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise _unreadable(path, error) from None


def open_image(path: Path) -> Image.Image:
    """The image in `path`, decoded only once its header's size is within MAX_IMAGE_SIDE."""
    image = _open_header(path)
    try:
        check_image_size(image.width, image.height, f"{path.name}: the image")
        image.load()
    except InputError:
        image.close()
        raise
    except (OSError, SyntaxError) as error:
        image.close()
        raise _unreadable(path, error) from None
    return image


def drawing_array(value) -> np.ndarray:
    """A drawing as the sketch pad sends it: an array of numbers, (H, W) or (H, W, 1, 3 or 4
    channels), within the size limit; checked before anything converts it whole."""
    array = np.asarray(value)
    channels_ok = array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4))
    if array.dtype.kind not in "buif" or not channels_ok or array.size == 0:
        raise InputError("the sketch pad sent something that is not a picture; draw on it again")
    check_image_size(array.shape[1], array.shape[0], "the drawing")
    return array
