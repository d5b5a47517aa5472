"""`cmcd bench app`: how quickly the app starts and answers.

- start-up: seconds from launching `python app.py` to its page being served (new process);
- classify latency per modality, p50 and p95 over repeated calls of the handlers the app's Classify
  buttons run (prediction and nearest photos) on the shipped examples (in process, after one
  warm-up call), on this machine's CPU.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from cmcd import paths
from cmcd.app import tryit
from cmcd.data import pairs

TIMED_LABEL = "7"  # the example of this class (else the first one) is timed for each panel's pair


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def startup_seconds(timeout: float = 180.0) -> float:
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    root = paths.checkout_root()
    if root is None:
        raise RuntimeError("`cmcd bench app` times app.py, which only a source checkout has")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(root / "app.py")], cwd=root, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).status == 200:
                    return time.perf_counter() - started
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"app.py did not serve its page within {timeout:.0f} s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed_pairs() -> list[str]:
    """The pair each Try-it panel opens on."""
    return [names[0] for _, names in tryit.try_it_panels()]


def _example(pair: str) -> str:
    found = tryit.examples(pair)
    return next((path for path in found if f"__{TIMED_LABEL}__" in Path(path).name), found[0])


def _look_up_example(pair: str, example: str) -> tuple[dict, list]:
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
    return {"startup_s": round(startup_seconds(), 2),
            "classify": {pair: classify_latency(pair, repeats) for pair in timed_pairs()},
            "cpu_count": os.cpu_count()}


def format_report(report: dict) -> str:
    lines = [f"app start-up to first page served: {report['startup_s']:.2f} s",
             f"classify latency on {report['cpu_count']} CPU cores (after one warm-up call):"]
    for pair, row in report["classify"].items():
        lines.append(f"  {pair:14s} p50 {row['p50_ms']:7.1f} ms   p95 {row['p95_ms']:7.1f} ms   "
                     f"({row['calls']} calls)")
    return "\n".join(lines)
