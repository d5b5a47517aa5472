"""`cmcd bench data`: how long building and loading the paired data takes, and peak memory.

Cold builds run in a fresh, empty cache folder (every pair rendered from the raw sources, the
speech clips synthesised; the clip bank is built in a child process of its own, whose memory is
not in the build figure). Warm loads run in a new process per pair against the filled cache,
timing `load_pair` alone, the way a training run or the app would start.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cmcd.modalities import pairs

WARM_PROBE = """
import json, sys, time
from cmcd.modalities import pairs
from cmcd.bench.data import peak_rss_mb
started = time.perf_counter()
pairs.load_pair(sys.argv[1], progress=lambda message: None)
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}))
"""


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike getrusage, it starts afresh at exec, so
    a child does not inherit its parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: KiB on Linux


def run(names: list[str] | None = None, cache_root: str | None = None) -> dict:
    names = names or list(pairs.PAIRS)
    root = cache_root or tempfile.mkdtemp(prefix="cmcd-bench-data-")
    os.environ["CMCD_CACHE"] = root
    pairs.source_images.cache_clear()

    cold = {}
    total_started = time.perf_counter()
    for name in names:
        started = time.perf_counter()
        data = pairs.load_pair(name)
        cold[name] = {"seconds": round(time.perf_counter() - started, 2), "sizes": data.sizes()}
        del data
    cold_total = time.perf_counter() - total_started

    build_peak = peak_rss_mb()
    warm, warm_peak = {}, {}
    for name in names:
        probe = subprocess.run([sys.executable, "-c", WARM_PROBE, name], capture_output=True,
                               text=True, check=True, env={**os.environ, "CMCD_CACHE": root})
        result = json.loads(probe.stdout.strip().splitlines()[-1])
        warm[name], warm_peak[name] = round(result["seconds"], 3), round(result["peak_rss_mb"], 1)

    return {
        "cache": root,
        "cpu_count": os.cpu_count(),
        "cold_build_s": cold,
        "cold_build_total_s": round(cold_total, 2),
        "warm_load_s": warm,
        "peak_rss_mb": {"build": round(build_peak, 1), "warm_load": warm_peak},
    }


def format_report(report: dict) -> str:
    lines = [f"cold build, empty cache ({report['cpu_count']} CPU cores):"]
    for name, row in report["cold_build_s"].items():
        lines.append(f"  {name:16s} {row['seconds']:7.2f} s   {row['sizes']}")
    lines.append(f"  {'all':16s} {report['cold_build_total_s']:7.2f} s")
    lines.append("warm load, new process, filled cache:")
    for name, seconds in report["warm_load_s"].items():
        lines.append(f"  {name:16s} {seconds:7.3f} s")
    peak = report["peak_rss_mb"]
    lines.append(f"peak memory: cold build of all {peak['build']:.0f} MB; warm load, largest pair "
                 f"{max(peak['warm_load'].values()):.0f} MB")
    return "\n".join(lines)
