"""Record what the code computes, through the CLI only, so a refactor can show it changed nothing.

    python scripts/behaviour_snapshot.py OUT.json [--seeds 3]

Writes one JSON object: default `cmcd distill --json` for each seed, the shipped students'
`cmcd classify --json` on every shipped example, and `cmcd bench paper --quick`'s runs. Wall-clock
fields are dropped.

    python scripts/behaviour_snapshot.py --compare BEFORE.json AFTER.json   # identical, or what differs
    python scripts/behaviour_snapshot.py --noise BEFORE.json AFTER.json     # seed noise or not

`--noise` sets the default runs' metrics of two snapshots side by side: mean and standard deviation
over seeds, the difference of means with a 95 % Welch t interval, for when the random streams
changed (different draws, same distributions) and only seed noise is allowed.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMING = {"wall_s", "train_s", "validation_s", "pairs_per_s", "device", "cpu_s", "finetune_s"}


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
        return [line for i, (x, y) in enumerate(zip(a, b, strict=True))
                for line in compare(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


NOISE_METRICS = {"zero-label head": ("zero_label_acc", "head"),
                 "zero-label prototype": ("zero_label_acc", "prototype"),
                 "10 labels/class": ("few_label_acc", "10"),
                 "R@1 target→source": ("retrieval", "target_to_source", "r1"),
                 "TV (head)": ("tv_distance_head",)}


def _values(snapshot: dict, path: tuple[str, ...]) -> list[float]:
    values = []
    for seed in sorted(snapshot["distill"], key=int):
        value = snapshot["distill"][seed]
        for key in path:
            value = value[key]
        values.append(float(value))
    return values


def noise_table(before: dict, after: dict) -> str:
    from scipy import stats

    lines = [f"default `cmcd distill`, {len(before['distill'])} seeds before, "
             f"{len(after['distill'])} after", "",
             "| metric | before | after | after − before (95 % CI) | p (Welch) |",
             "| --- | --- | --- | --- | --- |"]
    for name, path in NOISE_METRICS.items():
        x, y = _values(before, path), _values(after, path)
        test = stats.ttest_ind(y, x, equal_var=False)
        low, high = test.confidence_interval(0.95)
        difference = statistics.fmean(y) - statistics.fmean(x)
        lines.append(f"| {name} | {statistics.fmean(x):.4f} ± {statistics.stdev(x):.4f} | "
                     f"{statistics.fmean(y):.4f} ± {statistics.stdev(y):.4f} | "
                     f"{difference:+.4f} [{low:+.4f}, {high:+.4f}] | {test.pvalue:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--noise", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.noise:
        print(noise_table(*(json.loads(Path(p).read_text()) for p in args.noise)))
        return 0
    if args.compare:
        before, after = (json.loads(Path(p).read_text()) for p in args.compare)
        seeds = set(before["distill"]) & set(after["distill"])  # the seeds both ran
        for taken in (before, after):
            taken["distill"] = {seed: taken["distill"][seed] for seed in seeds}
        differences = compare(comparable(before), comparable(after))
        print("\n".join(differences) or "identical")
        return 1 if differences else 0
    Path(args.out).write_text(json.dumps(snapshot(args.seeds), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
