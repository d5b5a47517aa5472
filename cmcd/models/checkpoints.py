"""Models on disk: weights as safetensors next to a JSON file of metadata, both written atomically.

A checkpoint named STEM is STEM.safetensors (each module's state dict under "module.") and
STEM.json ({"modules": {name: config}, ...metadata}). Loading never unpickles anything.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cmcd.data import cache
from cmcd.modalities import encoder_from_config


def save_checkpoint(stem: Path, modules: dict[str, nn.Module], configs: dict[str, dict],
                    metadata: dict) -> Path:
    stem = Path(stem)
    tensors = {f"{name}.{key}": value.detach().cpu()
               for name, module in modules.items() for key, value in module.state_dict().items()}
    cache.save_tensors(stem.with_suffix(".safetensors"), tensors)
    cache.atomic_write_json(stem.with_suffix(".json"), {"modules": configs, **metadata})
    return stem


def load_checkpoint(stem: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """(state dict per module name, metadata including each module's config under "modules")."""
    stem = Path(stem)
    weights, metadata = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if not weights.exists() or not metadata.exists():
        raise FileNotFoundError(f"no checkpoint at {stem} (need {weights.name} and {metadata.name})")
    tensors, _ = cache.load_tensors(weights)
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        module, _, param = key.partition(".")
        states.setdefault(module, {})[param] = value
    return states, read_metadata(metadata)


def read_metadata(path: Path) -> dict:
    """A checkpoint's JSON metadata (STEM.json), or DamagedFile."""
    metadata = cache.read_json(path)
    if not isinstance(metadata, dict) or not isinstance(metadata.get("modules"), dict):
        raise cache.DamagedFile(f"{path} is damaged: it does not list the checkpoint's modules")
    return metadata


def save_student(stem: Path, student: nn.Module, metadata: dict) -> Path:
    """A student encoder as STEM.safetensors and STEM.json ({"modules": {"encoder": config}, ...})."""
    return save_checkpoint(stem, {"encoder": student}, {"encoder": student.config}, metadata)


def load_student(stem: Path) -> tuple[nn.Module, dict]:
    """A saved student encoder, in eval mode, and its metadata (pair, method, teacher, metrics...)."""
    stem = Path(stem)
    states, metadata = load_checkpoint(stem)
    try:
        student = encoder_from_config(metadata.pop("modules")["encoder"])
        student.load_state_dict(states["encoder"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise cache.DamagedFile(f"{stem}.safetensors and {stem.name}.json do not make a student "
                                f"encoder ({type(error).__name__}: {cache.first_line(error)})") from None
    return student.eval(), metadata


def update_student_metadata(stem: Path, **fields) -> dict:
    """Add or replace metadata fields of a saved student (its JSON alone; the weights stay
    byte for byte)."""
    path = Path(stem).with_suffix(".json")
    metadata = read_metadata(path)
    metadata.update(fields)
    cache.atomic_write_json(path, metadata)
    return metadata
