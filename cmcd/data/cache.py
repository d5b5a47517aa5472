"""On-disk cache of built data: where it lives, and atomic writes.

Everything written here goes to a temporary file in the same folder first and is then renamed
over the target, so a reader never sees half a file, even when two processes build at once.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file



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


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """Write tensors as safetensors, atomically; metadata values are stored as JSON strings."""
    path = Path(path)
    tmp = _atomic_target(path)
    try:
        meta = {key: json.dumps(value) for key, value in (metadata or {}).items()}
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a file written by save_tensors: (tensors, metadata)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = {key: json.loads(value) for key, value in (handle.metadata() or {}).items()}
    return load_file(str(path)), meta
