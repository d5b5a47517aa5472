"""Default settings, seed 0, test split: CMC, CMD, CMC+L2 and L2 on every pair.

    python scripts/method_table.py [--pairs ...] [--methods ...] [--seed 0]

Writes results/methods.json (every run's metrics) and results/methods.md (the README's table).
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cmcd import pairs  # noqa: E402
from cmcd.cache import atomic_write_bytes, atomic_write_json  # noqa: E402
from cmcd.distill import DistillConfig, distill  # noqa: E402

METHODS = ("cmc", "cmd", "cmc+l2", "l2")


def markdown(rows: list[dict]) -> str:
    lines = ["| pair | method | zero-label head | zero-label prototype | R@1 target→source | "
             "R@1 source→target | TV | wall s |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in rows:
        r = m["retrieval"]
        lines.append(f"| {m['pair']} | {m['method']} | {m['zero_label_acc']['head']:.3f} | "
                     f"{m['zero_label_acc']['prototype']:.3f} | {r['target_to_source']['r1']:.3f} | "
                     f"{r['source_to_target']['r1']:.3f} | {m['tv_distance']:.3f} | {m['wall_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=list(pairs.PAIRS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "results"))
    args = parser.parse_args()
    rows = []
    for pair in args.pairs:
        for method in args.methods:
            metrics = distill(DistillConfig(pair=pair, method=method, seed=args.seed)).metrics
            rows.append(metrics)
            print(f"{pair} {method}: head {metrics['zero_label_acc']['head']:.4f}", file=sys.stderr)
    out = Path(args.out)
    atomic_write_json(out / "methods.json", {"command": "python scripts/method_table.py",
                                            "runs": rows})
    atomic_write_bytes(out / "methods.md", markdown(rows).encode())
    print(markdown(rows))


if __name__ == "__main__":
    main()
