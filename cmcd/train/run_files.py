"""A distillation run on disk: its record (config, metrics, history), student and test embeddings.

The student is a checkpoint like the shipped ones (see cmcd.models.checkpoints.load_student on
RUN/student); the record's parts sit in config.json, metrics.json and history.json.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from cmcd.data import cache
from cmcd.eval.records import RunRecord
from cmcd.models.checkpoints import save_student
from cmcd.train.distill import DistillRun

RUN_FILES = ("config.json", "metrics.json", "history.json", "student.safetensors", "student.json",
             "embeddings.npz")


def run_record(run: DistillRun) -> RunRecord:
    return RunRecord(run.config.to_dict(), run.metrics, run.history, run.val_history)


def save_run(run: DistillRun, out: Path, calibration: dict | None = None) -> Path:
    """config.json, metrics.json, history.json, student.safetensors (+ .json), embeddings.npz,
    written into a temporary sibling folder that is renamed to `out` once complete, so that an
    interrupted save leaves no half run; a run already at `out` is replaced whole. `calibration`
    (cmcd.eval.confidence.calibrate_student) goes into the student's JSON."""
    out = Path(out)
    check_run_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes folders private; a run is an ordinary folder
        _write_run(run, staging, calibration)
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def check_run_folder(out: Path) -> None:
    """ValueError unless `out` is absent, empty or a run folder, which save_run may replace, and
    its folder is one this process may write in: checked before a run trains, not after."""
    out = Path(out)
    _check_writable(out)
    if not out.exists():
        return
    strangers = not out.is_dir() or any(
        path.name not in RUN_FILES and not (path.name.startswith(".") and path.name.endswith(".tmp"))
        for path in out.iterdir())
    if strangers:
        raise ValueError(f"{out} exists and is not a run folder; choose another folder for the run")


def _check_writable(out: Path) -> None:
    """ValueError unless a file can be made next to `out` (or, while that folder does not exist
    yet, in its nearest folder that does, where save_run would create it)."""
    existing = out.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot write the run to {out}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ValueError(f"cannot write the run to {out}: {existing} is not a folder this process may "
                         f"write in ({reason}); choose another folder") from None


def _write_run(run: DistillRun, folder: Path, calibration: dict | None) -> None:
    record = run_record(run)
    cache.atomic_write_json(folder / "config.json", record.config)
    cache.atomic_write_json(folder / "metrics.json", record.metrics)
    cache.atomic_write_json(folder / "history.json", {"steps": record.history,
                                                      "epochs": record.val_history})
    save_student(folder / "student", run.student, {
        "pair": run.config.pair, "method": run.config.method, "teacher": run.config.teacher,
        "metrics": run.metrics, **({"calibration": calibration} if calibration else {})})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **run.embeddings)
    cache.atomic_write_bytes(folder / "embeddings.npz", buffer.getvalue())


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename `staging` to `out`; an earlier `out` is renamed aside first and deleted after."""
    if not out.exists():
        staging.rename(out)
        return
    aside = staging.with_suffix(".old")
    out.rename(aside)
    try:
        staging.rename(out)
    except OSError:
        aside.rename(out)
        raise
    shutil.rmtree(aside)


def load_run(run_dir: Path) -> RunRecord:
    """The record of a run saved by save_run."""
    run_dir = Path(run_dir)
    history = cache.read_json(run_dir / "history.json")
    return RunRecord(cache.read_json(run_dir / "config.json"),
                     cache.read_json(run_dir / "metrics.json"), history["steps"], history["epochs"])
