"""A distillation run on disk: its config, metrics, history, student and test embeddings."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
from torch import nn

from cmcd.data import cache
from cmcd.models.checkpoints import load_checkpoint, save_checkpoint
from cmcd.modalities import encoder_from_config
from cmcd.train.distill import DistillRun


def save_run(run: DistillRun, out: Path) -> Path:
    """config.json, metrics.json, history.json, student.safetensors (+ .json), embeddings.npz."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache.atomic_write_json(out / "config.json", asdict(run.config))
    cache.atomic_write_json(out / "metrics.json", run.metrics)
    cache.atomic_write_json(out / "history.json", {"steps": run.history, "epochs": run.val_history})
    save_checkpoint(out / "student", {"encoder": run.student}, {"encoder": run.student.config},
                    {"pair": run.config.pair, "method": run.config.method,
                     "teacher": run.config.teacher, "metrics": run.metrics})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **run.embeddings)
    cache.atomic_write_bytes(out / "embeddings.npz", buffer.getvalue())
    return out


def load_student(run_dir: Path) -> tuple[nn.Module, dict]:
    """A saved student and its checkpoint metadata (pair, method, teacher, metrics)."""
    states, metadata = load_checkpoint(Path(run_dir) / "student")
    student = encoder_from_config(metadata["modules"]["encoder"])
    student.load_state_dict(states["encoder"])
    return student.eval(), metadata


def load_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())
