"""`cmcd bench app`: how quickly the app starts and answers.

- start-up: seconds from launching `python app.py` to its page being served (new process);
- cold start: a restarted Space, an empty CMCD_CACHE: seconds from launch to the first answered
  classification of the audio example through the app's API (`/classify_audio`);
- classify latency per modality, p50 and p95 over repeated calls of the handlers the app's Classify
  buttons run (prediction and nearest photos) on the shipped examples (in process, after one
  warm-up call), on this machine's CPU.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from cmcd import paths
from cmcd.app import tryit
from cmcd.modalities import pairs

TIMED_LABEL = "7"  # the example of this class (else the first one) is timed for each panel's pair


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served_app(root: Path, env: dict, timeout: float = 180.0):
    """Launch `python app.py` from checkout `root` in a new process and yield (its URL, the
    perf_counter time it was launched at, the process) once its page is served; stop it afterwards."""
    port = _free_port()
    env = {**os.environ, **env, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "PYTHONPATH": str(root)}
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(root / "app.py")], cwd=root, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _serves(url):
            if time.perf_counter() - started > timeout or process.poll() is not None:
                raise RuntimeError(f"app.py did not serve its page within {timeout:.0f} s")
            time.sleep(0.1)
        yield url, started, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _serves(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=1).status == 200
    except OSError:
        return False


def _checkout(root: Path | None = None) -> Path:
    root = root or paths.checkout_root()
    if root is None:
        raise RuntimeError("`cmcd bench app` times app.py, which only a source checkout has")
    return Path(root)


def startup_seconds(root: Path | None = None) -> float:
    """Seconds from launching app.py to its page being served."""
    with served_app(_checkout(root), {}) as (_, started, _):
        return time.perf_counter() - started


def cold_start_seconds(root: Path | None = None) -> dict:
    """A restarted Space: app.py launched with an empty CMCD_CACHE, then the audio panel's
    example classified through the app's named API endpoint (/classify_audio) as soon as the
    page is served. Seconds from launch to the page, and to the answer."""
    from gradio_client import Client, handle_file

    root = _checkout(root)
    example = _example("digits-audio")
    with tempfile.TemporaryDirectory(prefix="cmcd-cold-") as cache:
        with served_app(root, {"CMCD_CACHE": cache}) as (url, started, _):
            page_s = time.perf_counter() - started
            answer = Client(url, verbose=False).predict(
                "digits-audio", handle_file(example), api_name="/classify_audio")
            answer_s = time.perf_counter() - started
    return {"page_s": round(page_s, 2), "first_answer_s": round(answer_s, 2),
            "label": json.loads(answer)["label"], "example": Path(example).name}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed_pairs() -> list[str]:
    """The pair each Try-it panel opens on."""
    return [names[0] for _, names in tryit.try_it_panels()]


def _example(pair: str) -> str:
    found = tryit.examples(pair)
    return next((path for path in found if f"__{TIMED_LABEL}__" in Path(path).name), found[0])


def _look_up_example(pair: str, example: str) -> tuple:
    """What the app's Classify button does for that input: a sketch pad hands over an image,
    the other inputs a file."""
    if pairs.get_spec(pair).target.try_it.widget == "sketchpad":
        return tryit.look_up_drawing(pair, {"composite": np.asarray(Image.open(example).convert("RGBA"))})
    return tryit.look_up_upload(pair, example)


def classify_latency(pair: str, repeats: int) -> dict:
    example = _example(pair)
    _look_up_example(pair, example)  # warm-up: loads the student, the teacher and the test embeddings
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        _look_up_example(pair, example)
        times.append(time.perf_counter() - started)
    return {"p50_ms": round(1000 * statistics.median(times), 1),
            "p95_ms": round(1000 * _percentile(times, 0.95), 1), "calls": len(times)}


def run(repeats: int = 50) -> dict:
    return {"startup_s": round(startup_seconds(), 2), "cold_start": cold_start_seconds(),
            "classify": {pair: classify_latency(pair, repeats) for pair in timed_pairs()},
            "cpu_count": os.cpu_count()}


def format_report(report: dict) -> str:
    lines = [f"app start-up to first page served: {report['startup_s']:.2f} s"]
    if "cold_start" in report:
        cold = report["cold_start"]
        lines.append(f"cold start (empty cache): page after {cold['page_s']:.2f} s, first "
                     f"/classify_audio answer ({cold['example']}: {cold['label']}) after "
                     f"{cold['first_answer_s']:.2f} s")
    lines.append(f"classify latency on {report['cpu_count']} CPU cores (after one warm-up call):")
    for pair, row in report["classify"].items():
        lines.append(f"  {pair:14s} p50 {row['p50_ms']:7.1f} ms   p95 {row['p95_ms']:7.1f} ms   "
                     f"({row['calls']} calls)")
    return "\n".join(lines)
