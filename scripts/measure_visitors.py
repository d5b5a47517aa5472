"""Concurrent visitors distilling in the app: the run store's disk and the process's memory, before
and after (issue 22: the runs kept per session stay bounded).

    python scripts/measure_visitors.py [--visitors 5] [--runs-each 2] [--max-runs 6]

Each visitor is a thread calling the app's Distill handler (tiny runs: digits-sketch, cmc, one
epoch of 300 pairs), as the app's queue would with that many workers; the store lives in a new
temporary folder, with at most --max-runs runs. Prints one JSON object.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def visitor(app, runs_each: int, seed: int, kept: dict, errors: list) -> None:
    run_ids: list[str] = []
    try:
        for n in range(runs_each):
            updates = list(app.run_distillation("digits-sketch", "cmc", 1, 300, 64, 0.3,
                                                seed * 100 + n, run_ids))
            run_ids = updates[-1][-1]
        kept[seed] = run_ids
    except Exception as error:  # reported in the output
        errors.append(f"visitor {seed}: {type(error).__name__}: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=5, help="concurrent visitors (default: 5)")
    parser.add_argument("--runs-each", type=int, default=2, help="runs per visitor (default: 2)")
    parser.add_argument("--max-runs", type=int, default=6, help="the store's run limit (default: 6)")
    args = parser.parse_args()
    os.environ["CMCD_STUDENTS"] = tempfile.mkdtemp(prefix="cmcd-visitors-")
    os.environ["CMCD_RUNS_MAX"] = str(args.max_runs)
    import app
    from cmcd.app import your_runs

    list(app.run_distillation("digits-sketch", "cmc", 1, 300, 64, 0.3, 999, []))  # warm: data, teacher
    store = your_runs.store()
    before = {"rss_mb": round(rss_mb(), 1), **store.usage()}
    kept: dict = {}
    errors: list = []
    threads = [threading.Thread(target=visitor, args=(app, args.runs_each, seed, kept, errors))
               for seed in range(args.visitors)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = [len(store.summaries(ids)[0]) for ids in kept.values()]
    after = {"rss_mb": round(rss_mb(), 1), **store.usage(),
             "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    print(json.dumps({"visitors": args.visitors, "runs_each": args.runs_each, "max_runs": args.max_runs,
                      "wall_s": round(time.perf_counter() - started, 1), "before": before,
                      "after": after, "runs_still_held_per_visitor": held, "errors": errors,
                      "store": str(store.root)}, indent=2))


if __name__ == "__main__":
    main()
