"""The app's runs on the server: a bounded store of the students visitors distil.

Each finished run is a folder `ROOT/RUN_ID/` (ROOT: checkpoints/app-runs): the run as `cmcd
distill --out` saves it (student with its calibration, metrics, embeddings), plus summary.json
(what the Compare tab shows) and student.zip (the Download button's bundle). The visitor's browser
keeps the run ids (gr.BrowserState); the server keeps the runs, within bounds:

- an age limit and a size limit (number of runs and bytes): older runs go first;
- concurrent visitors: adding and pruning hold one lock; a run is written into a hidden folder
  and renamed into place whole, so no one sees half a run;
- a restart: the store is only its folder, read afresh; on an empty disk (a Space after a
  restart) every earlier id is unknown, and an unknown id says that the run expired.

Run ids are random 128-bit tokens: a visitor's ids are the only way to its runs.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cmcd.data import cache
from cmcd.data.inputs import InputError

RUN_ID = re.compile(r"[0-9a-f]{32}")
SUMMARY = "summary.json"
BUNDLE = "student.zip"
INCOMING_MAX_AGE_S = 3600  # a hidden folder this old is left over from a crash


class RunExpired(InputError):
    """A run id the store does not hold (any more): the visitor reads it as one sentence."""


@dataclass
class RunStore:
    root: Path
    max_age_s: float = 24 * 3600
    max_runs: int = 100
    max_bytes: int = 1_000_000_000

    def __post_init__(self):
        self.root = Path(self.root)
        self._lock = threading.Lock()

    def add(self, write_run, summary: dict) -> str:
        """A new run: `write_run(folder)` writes its files into `folder` (which must not exist
        yet); summary.json is added; the run then appears whole. Returns its id."""
        run_id = uuid.uuid4().hex
        incoming = self.root / f".{run_id}.incoming"
        try:
            write_run(incoming)
            cache.atomic_write_json(incoming / SUMMARY, {**summary, "run_id": run_id,
                                                         "created": time.time()})
            with self._lock:
                incoming.rename(self.root / run_id)
                self._prune()
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        return run_id

    def folder(self, run_id: str) -> Path:
        """The run's folder, or RunExpired."""
        folder = self.root / str(run_id)
        if not RUN_ID.fullmatch(str(run_id)) or not (folder / SUMMARY).exists():
            raise RunExpired(f"run {str(run_id)[:8]} expired: the server keeps runs for "
                             f"{self.max_age_s / 3600:g} h (and at most {self.max_runs}); distil it again")
        return folder

    def summary(self, run_id: str) -> dict:
        try:
            return cache.read_json(self.folder(run_id) / SUMMARY)
        except FileNotFoundError:  # pruned between the check and the read
            raise RunExpired(f"run {run_id[:8]} expired; distil it again") from None

    def summaries(self, run_ids) -> tuple[list[dict], list[str]]:
        """The summaries of the runs still held, in order, and the ids that expired."""
        found, expired = [], []
        for run_id in run_ids or []:
            try:
                found.append(self.summary(run_id))
            except RunExpired:
                expired.append(run_id)
        return found, expired

    def usage(self) -> dict:
        """How many runs the store holds and their bytes on disk."""
        runs = self._runs()
        return {"runs": len(runs), "bytes": sum(size for _, _, size in runs)}

    def _runs(self) -> list[tuple[float, Path, int]]:
        """(created, folder, bytes) of every whole run, oldest first."""
        runs = []
        for folder in self.root.glob("*") if self.root.exists() else []:
            try:
                if RUN_ID.fullmatch(folder.name):
                    created = (folder / SUMMARY).stat().st_mtime
                    runs.append((created, folder, _bytes(folder)))
            except FileNotFoundError:  # removed meanwhile
                continue
        return sorted(runs)

    def _prune(self) -> None:
        """Remove runs past the age limit, then the oldest until within the size limits (the
        caller holds the lock); and hidden folders left over from a crash."""
        now, runs = time.time(), self._runs()
        total = sum(size for _, _, size in runs)
        for index, (created, folder, size) in enumerate(runs):
            left = len(runs) - index
            if now - created <= self.max_age_s and left <= self.max_runs and total <= self.max_bytes:
                break
            _remove(folder)
            total -= size
        for folder in self.root.glob(".*.incoming"):
            if now - folder.stat().st_mtime > INCOMING_MAX_AGE_S:
                _remove(folder)


def _bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _remove(folder: Path) -> None:
    """Rename aside (the run is gone at once for every reader), then delete."""
    aside = folder.with_name(f".{folder.name}.{os.getpid()}.deleting")
    try:
        folder.rename(aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)
