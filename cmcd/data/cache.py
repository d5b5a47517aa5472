"""On-disk cache of built data: where it lives, and atomic writes.

Everything written here goes to a temporary file in the same folder first and is then renamed
over the target, so a reader never sees half a file, even when two processes build at once.
Tensor files carry a checksum of their tensors, checked on reading, so a file damaged later (a
full disk, a copy cut short, bytes changed in place) is rebuilt instead of used (`load_cached`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

CHECKSUM_KEY = "sha256"  # in a safetensors file's metadata: tensors_checksum of its tensors

log = logging.getLogger(__name__)


class DamagedFile(ValueError):
    """A file this package wrote that cannot be read back as written (truncated, changed, not what
    it should hold), with a one-line reason that names it."""


def _atomic_target(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(tmp, 0o644)  # mkstemp makes files private; these are ordinary data files
    return Path(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp = _atomic_target(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path):
    """A JSON file, such as one written by atomic_write_json; DamagedFile, naming it, when it is
    not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except ValueError as error:  # not UTF-8, or not JSON
        raise DamagedFile(f"{path} is damaged: not valid JSON ({error})") from None


def tensors_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over each tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """Write tensors as safetensors, atomically, with their checksum; metadata values are stored
    as JSON strings."""
    path = Path(path)
    tmp = _atomic_target(path)
    try:
        meta = {key: json.dumps(value) for key, value in (metadata or {}).items()}
        meta[CHECKSUM_KEY] = json.dumps(tensors_checksum(tensors))
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_tensors(path: Path, require_checksum: bool = False) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a file written by save_tensors: (tensors, metadata). DamagedFile when the file is
    truncated, not safetensors, or its tensors differ from its checksum; a file without a
    checksum (an older one, or one written elsewhere) is read as is unless `require_checksum`."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = {key: json.loads(value) for key, value in (handle.metadata() or {}).items()}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except FileNotFoundError:
        raise
    except (SafetensorError, OSError, ValueError) as error:
        raise DamagedFile(f"{path} is damaged or truncated ({first_line(error)})") from None
    checksum = meta.pop(CHECKSUM_KEY, None)
    if checksum is None and require_checksum:
        raise DamagedFile(f"{path} has no checksum (it was written by an older version)")
    if checksum is not None and checksum != tensors_checksum(tensors):
        raise DamagedFile(f"{path} is damaged: its contents no longer match their checksum")
    return tensors, meta


def load_cached(path: Path, report: Callable[[str], None] | None = None):
    """A cache file's (tensors, metadata), or None when it is absent or cannot be trusted
    (damaged, or without a checksum), so that the caller builds it again; the second case is
    reported in one line (by default as a logged warning)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return load_tensors(path, require_checksum=True)
    except DamagedFile as damage:
        (report or log.warning)(f"{damage}; rebuilding it")
        return None


def first_line(error: Exception) -> str:
    """An exception's message cut to its first line, for one-line reports."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]

