"""A one-second recording at an odd sample rate, through `cmcd classify` and through the app: seconds
and peak memory (issue 21: any rate must cost bounded time and memory; the bound is 5 s, 1.5 GB).

    python scripts/measure_odd_rates.py [--rates 16001 44101] [--json]

The recordings are the shipped spoken seven, interpolated to exactly one second at each rate.
- CLI: each `cmcd classify --pair digits-audio` is a fresh process run under `/usr/bin/time -v`
  (wall seconds and maximum resident set, the whole process: Python, torch and the student).
- App: `python app.py` on a free port (cmcd.bench.app.served_app); one 16 kHz call first (loads
  the student), then each odd rate through gradio_client. The server's peak resident set (VmHWM)
  is read before and after, and each call's seconds are timed at the client.
Prints a table (or one JSON object with --json).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cmcd.bench.app import served_app  # noqa: E402

SPOKEN_SEVEN = ROOT / "cmcd/shipped/examples/digits-audio__7__testvoice7017.wav"
BOUND = {"seconds": 5.0, "peak_gb": 1.5}


def one_second_at(rate: int, folder: Path) -> Path:
    """The shipped seven, mono, stretched or squeezed to exactly `rate` samples."""
    wave, _ = soundfile.read(SPOKEN_SEVEN, dtype="float32")
    if wave.ndim > 1:
        wave = wave.mean(axis=1)
    where = np.linspace(0, len(wave) - 1, rate)
    path = folder / f"seven_{rate}hz.wav"
    soundfile.write(path, np.interp(where, np.arange(len(wave)), wave).astype(np.float32), rate)
    return path


def through_cli(path: Path) -> dict:
    cmcd = Path(sys.executable).with_name("cmcd")
    command = ["/usr/bin/time", "-v", str(cmcd), "classify", "--pair", "digits-audio", str(path)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"cmcd classify failed: {done.stderr[-500:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)",
                     done.stderr)
    hours, minutes, seconds = (float(part or 0) for part in wall.groups())
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return {"answer": done.stdout.strip().splitlines()[-1],
            "seconds": round(hours * 3600 + minutes * 60 + seconds, 2),
            "peak_gb": round(peak_kb / 1024 ** 2, 3)}


def peak_gb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024 ** 2, 3)
    raise RuntimeError("no VmHWM")


def through_app(paths: dict[int, Path], folder: Path) -> dict:
    from gradio_client import Client, handle_file

    with served_app(ROOT, {}) as (url, _, process):
        client = Client(url, verbose=False)

        def classify(path: Path) -> dict:
            begun = time.perf_counter()
            answer = client.predict("digits-audio", handle_file(path), api_name="/classify_audio")
            return {"seconds": round(time.perf_counter() - begun, 2), "answer": _label(answer)}

        warm = classify(one_second_at(16000, folder))
        before = peak_gb(process.pid)
        calls = {rate: classify(path) for rate, path in paths.items()}
        return {"warm_up_16000hz": warm, "server_peak_gb_before": before, "calls": calls,
                "server_peak_gb_after": peak_gb(process.pid)}


def _label(answer: str) -> str:
    """The app's JSON answer (cmcd.app.tools.classify_answer), cut to its headline: the label and
    its confidence."""
    found = json.loads(answer)
    return f"{found['label']} ({found['confidence']:.0%}{', not sure' if found['unsure'] else ''})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[16001, 44101])
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        paths = {rate: one_second_at(rate, folder) for rate in args.rates}
        report = {"bound": BOUND, "cli": {rate: through_cli(path) for rate, path in paths.items()},
                  "app": through_app(paths, folder)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"bound: under {BOUND['seconds']} s and {BOUND['peak_gb']} GB")
    for rate, cli in report["cli"].items():
        print(f"cmcd classify  {rate:>6} Hz  {cli['seconds']:5.2f} s  peak {cli['peak_gb']:.2f} GB  "
              f"{cli['answer']}")
    app = report["app"]
    for rate, call in app["calls"].items():
        print(f"app            {rate:>6} Hz  {call['seconds']:5.2f} s  {call['answer']}")
    print(f"app server peak: {app['server_peak_gb_before']:.2f} GB after the 16 kHz warm-up, "
          f"{app['server_peak_gb_after']:.2f} GB after the odd rates")


if __name__ == "__main__":
    main()
