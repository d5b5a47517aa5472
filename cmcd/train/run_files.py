"""A distillation run on disk: its record (config, metrics, history), student and test embeddings.

The student is a checkpoint like the shipped ones (see cmcd.models.checkpoints.load_student on
RUN/student); the record's parts sit in config.json, metrics.json and history.json.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cmcd.data import cache
from cmcd.eval.records import RunRecord
from cmcd.models.checkpoints import save_student
from cmcd.train.distill import DistillRun


def run_record(run: DistillRun) -> RunRecord:
    return RunRecord(asdict(run.config), run.metrics, run.history, run.val_history)


def save_run(run: DistillRun, out: Path) -> Path:
    """config.json, metrics.json, history.json, student.safetensors (+ .json), embeddings.npz."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = run_record(run)
    cache.atomic_write_json(out / "config.json", record.config)
    cache.atomic_write_json(out / "metrics.json", record.metrics)
    cache.atomic_write_json(out / "history.json", {"steps": record.history, "epochs": record.val_history})
    save_student(out / "student", run.student, {"pair": run.config.pair, "method": run.config.method,
                                                "teacher": run.config.teacher, "metrics": run.metrics})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **run.embeddings)
    cache.atomic_write_bytes(out / "embeddings.npz", buffer.getvalue())
    return out


def load_run(run_dir: Path) -> RunRecord:
    """The record of a run saved by save_run."""
    run_dir = Path(run_dir)
    history = json.loads((run_dir / "history.json").read_text())
    return RunRecord(json.loads((run_dir / "config.json").read_text()),
                     json.loads((run_dir / "metrics.json").read_text()),
                     history["steps"], history["epochs"])
