"""Choose how many real recordings go into the spoken digits' training pairs, leaving one real
speaker out at a time (cmcd.bench.speakers); writes results/speakers.json.

    python scripts/real_speakers.py [--shares 0 25 50] [--seeds 0] [--epochs 5] [--width 16]
                                  [--speakers jackson ...] [--out results]
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmcd.bench import speakers  # noqa: E402
from cmcd.cli import progress_on_stderr  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", nargs="+", type=int, default=list(speakers.Plan.shares))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(speakers.Plan.seeds))
    parser.add_argument("--epochs", type=int, default=speakers.Plan.epochs)
    parser.add_argument("--width", type=int, default=speakers.Plan.width)
    parser.add_argument("--speakers", nargs="+", default=list(speakers.Plan.speakers),
                        help="the speakers held out in turn (default: all four)")
    parser.add_argument("--out", default="results")
    args = parser.parse_args()
    plan = speakers.Plan(tuple(args.shares), tuple(args.seeds), args.epochs, args.width, tuple(args.speakers))
    report = speakers.run(plan, args.out)
    print(json.dumps({"summary": report["summary"], "choice": report["choice"]}, indent=2))


if __name__ == "__main__":
    with progress_on_stderr():
        main()
