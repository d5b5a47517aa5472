"""Record what the code computes, through the CLI only, so a refactor can show it changed nothing.

    python scripts/behaviour_snapshot.py OUT.json [--seeds 3]

Writes one JSON object: default `cmcd distill --json` for each seed, the shipped students'
`cmcd classify --json` on every shipped example, and `cmcd bench paper --quick`'s runs. Wall-clock
fields are dropped. Compare two snapshots with `--compare A.json B.json`.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMING = {"wall_s", "train_s", "validation_s", "pairs_per_s", "device"}


def cmcd(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "cmcd", *args], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def without_timing(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key not in TIMING}


def snapshot(seeds: int) -> dict:
    result = {"distill": {str(seed): without_timing(cmcd("distill", "--seed", str(seed), "--json"))
                          for seed in range(seeds)}}
    examples = sorted((ROOT / "cmcd" / "shipped" / "examples").glob("*__*"))
    by_pair: dict[str, list[str]] = {}
    for path in examples:
        by_pair.setdefault(path.name.split("__")[0], []).append(str(path))
    result["classify"] = {pair: cmcd("classify", "--pair", pair, *files, "--json")
                          for pair, files in sorted(by_pair.items())}
    with tempfile.TemporaryDirectory() as out:
        report = cmcd("bench", "paper", "--quick", "--out", out, "--json")
    result["paper_quick"] = sorted(
        ({"study": run["study"], "config": run["config"], "metrics": without_timing(run["metrics"])}
         for run in report["runs"]), key=lambda run: json.dumps(run["config"], sort_keys=True))
    return result


def comparable(snapshot: dict) -> dict:
    """A snapshot with what may legitimately differ taken out: example files by name only, and the
    benchmark runs keyed by what identifies a run (config formats differ between versions)."""
    classify = {pair: [{**entry, "file": Path(entry["file"]).name} for entry in result["results"]]
                if "results" in result else result for pair, result in snapshot["classify"].items()}
    runs = {}
    for run in snapshot["paper_quick"]:
        c = run["config"]
        key = "/".join(str(c.get(k)) for k in ("pair", "method", "teacher", "n_pairs", "gap", "seed"))
        runs[f"{run['study']}/{key}"] = run["metrics"]
    return {"distill": snapshot["distill"], "classify": classify, "paper_quick": runs}


def compare(a: dict, b: dict, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [line for key in sorted(set(a) | set(b))
                for line in compare(a.get(key), b.get(key), f"{path}.{key}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [line for i, (x, y) in enumerate(zip(a, b)) for line in compare(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(Path(p).read_text()) for p in args.compare)
        differences = compare(comparable(before), comparable(after))
        print("\n".join(differences) or "identical")
        return 1 if differences else 0
    Path(args.out).write_text(json.dumps(snapshot(args.seeds), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
