"""A visitor's own students: each finished run is saved in the server's bounded run store (with its
calibration and a download bundle), its id kept in the visitor's browser; the Try-it panels
offer it next to the shipped student, the Distill tab its zip, the Compare tab its metrics."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from cmcd import paths
from cmcd.app import tryit
from cmcd.app.run_store import BUNDLE, RunStore
from cmcd.app.shipped import built_pair
from cmcd.eval.classify import Classifier
from cmcd.eval.confidence import calibrate_student
from cmcd.eval.student_export import write_bundle
from cmcd.train.run_files import save_run

SHIPPED = "shipped"  # the Student dropdown's value for the pair's shipped student
STORE_FOLDER = "app-runs"  # under checkpoints/ (paths.students_dir())
# The ids live in the browser's localStorage under a fixed key and secret, so that they outlive a
# restart of the app (and a run the restarted server no longer holds says it expired). The ids
# are the secret that matters: random 128-bit tokens, the only way to a run.
BROWSER_KEY = "cmcd-session-runs"
BROWSER_SECRET = os.environ.get("CMCD_BROWSER_SECRET", "cmcd-session-runs")


@functools.cache
def _store_at(root: str, max_age_h: float, max_runs: int, max_mb: float) -> RunStore:
    return RunStore(Path(root), max_age_s=max_age_h * 3600, max_runs=max_runs,
                    max_bytes=int(max_mb * 1e6))


def store() -> RunStore:
    """The app's run store: checkpoints/app-runs ($CMCD_STUDENTS/app-runs), keeping runs for
    $CMCD_RUNS_MAX_AGE_H hours (24), at most $CMCD_RUNS_MAX runs (100) and $CMCD_RUNS_MAX_MB
    megabytes (1000)."""
    return _store_at(str(paths.students_dir() / STORE_FOLDER),
                     float(os.environ.get("CMCD_RUNS_MAX_AGE_H", 24)),
                     int(os.environ.get("CMCD_RUNS_MAX", 100)),
                     float(os.environ.get("CMCD_RUNS_MAX_MB", 1000)))


def keep_run(run, summary: dict) -> str:
    """Save a finished run (calibrated on validation, as `cmcd distill --out` does, with its zip)
    in the store; returns its id."""
    config = run.config
    calibration = calibrate_student(run.student, config.pair, config.teacher, config.gap)
    example = built_pair(config.pair).test.target[:1]

    def write(folder):
        save_run(run, folder, calibration)
        write_bundle(folder, folder / BUNDLE, example)

    return store().add(write, summary)


def bundle_path(run_id: str) -> str:
    """The run's zip, as a copy named cmcd-student-PAIR.zip in a folder of the system's temp dir
    (where Gradio serves files from, wherever the store is)."""
    import shutil
    import tempfile

    summary = store().summary(run_id)
    copy = Path(tempfile.gettempdir()) / "cmcd-app-downloads" / run_id / f"cmcd-student-{summary['pair']}.zip"
    if not copy.exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        staging = copy.with_name(f".{copy.name}.{os.getpid()}.tmp")
        shutil.copyfile(store().folder(run_id) / BUNDLE, staging)
        staging.replace(copy)
    return str(copy)


@functools.lru_cache(maxsize=8)  # a few visitors' students stay loaded, not every run's
def _classifier(run_id: str, pair: str) -> Classifier:
    return Classifier(pair, store().folder(run_id))


def run_classifier(run_id: str) -> tuple[str, Classifier]:
    """A stored run's pair and its student, ready to classify; RunExpired when the store no
    longer holds it."""
    pair = store().summary(run_id)["pair"]
    return pair, _classifier(run_id, pair)


def student_choices(run_ids, pairs_here: list[str]) -> list[tuple[str, str]]:
    """The Try-it panel's Student choices: the shipped one, then the visitor's runs still held of
    the panel's pairs (newest first)."""
    held, _ = store().summaries(run_ids)
    mine = [(f"your {run['pair']} student ({run['metrics']['zero_label_acc']['head']:.1%}): "
             f"{run['label']}", run["run_id"]) for run in reversed(held) if run["pair"] in pairs_here]
    return [("the shipped student", SHIPPED), *mine]


def look_up(pair: str, student: str, sample_of) -> tuple[dict, list, str, dict]:
    """The Try-it answer of the chosen student; `sample_of(pair)` reads the input for a pair (a
    run's own pair, when the student is the visitor's)."""
    if not student or student == SHIPPED:
        return tryit._look_up(pair, sample_of(pair))
    run_pair, model = run_classifier(student)
    return tryit._look_up(run_pair, sample_of(run_pair), model)


def look_up_drawing(pair: str, student: str, editor_value):
    return look_up(pair, student, lambda p: tryit._drawing_sample(p, editor_value))


def look_up_upload(pair: str, student: str, path):
    return look_up(pair, student, lambda p: tryit._upload_sample(p, path))


def compare_view(run_ids) -> tuple[list[dict], str]:
    """The visitor's runs still held (summaries) and a note on those that expired."""
    held, expired = store().summaries(run_ids)
    note = ("" if not expired else f"{len(expired)} of your earlier runs expired (the server keeps "
            f"runs for {store().max_age_s / 3600:g} h, at most {store().max_runs}); distil them again.")
    return held, note

