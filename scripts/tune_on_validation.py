"""How the distillation defaults were chosen: a small sweep scored on the validation split only.

    python scripts/tune_on_validation.py [--pair digits-sketch] [--epochs 5]

Every setting trains with the same budget and seed; the score is the last epoch's zero-label head
accuracy on *validation* items (prototype accuracy alongside). Writes results/tuning.json.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cmcd.cli import progress_on_stderr  # noqa: E402
from cmcd.data.cache import atomic_write_json  # noqa: E402
from cmcd.train.config import DistillConfig  # noqa: E402
from cmcd.train.distill import distill  # noqa: E402

SETTINGS = [
    dict(method="cmc", temperature=0.07, learn_temperature=True),
    dict(method="cmc", temperature=0.2, learn_temperature=True),
    *(dict(method="cmc", temperature=t) for t in (0.05, 0.1, 0.2, 0.3, 0.5)),
    dict(method="cmc", temperature=0.3, negatives="bank"),
    dict(method="cmd", teacher_temperature=0.04, temperature=0.1),
    dict(method="cmd", teacher_temperature=0.05, temperature=0.2),
    dict(method="cmd", teacher_temperature=0.1, temperature=0.3),
    dict(method="cmd", teacher_temperature=0.1, temperature=0.3, negatives="bank"),
    *(dict(method="cmc+l2", temperature=0.3, l2_weight=w) for w in (0.5, 1.0, 2.0)),
]


AUGMENT_PAIRS = ("digits-sketch", "digits-depth", "digits-audio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="digits-sketch")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for setting in SETTINGS:
        run = distill(DistillConfig.from_flat(pair=args.pair, epochs=args.epochs, **setting))
        rows.append({**setting, "val_head": run.val_history[-1]["head"],
                     "val_prototype": run.val_history[-1]["prototype"]})
        print(json.dumps(rows[-1]), flush=True)
    augment_rows = []
    for pair in AUGMENT_PAIRS:
        for augment in (True, False):
            run = distill(DistillConfig(pair=pair, epochs=args.epochs, augment=augment))
            augment_rows.append({"pair": pair, "method": run.config.method, "augment": augment,
                                 "val_head": run.val_history[-1]["head"],
                                 "val_prototype": run.val_history[-1]["prototype"],
                                 "pairs_per_s": run.metrics["pairs_per_s"]})
            print(json.dumps(augment_rows[-1]), flush=True)
    atomic_write_json(ROOT / "results" / "tuning.json",
                      {"command": "python scripts/tune_on_validation.py", "pair": args.pair,
                       "epochs": args.epochs, "split": "validation", "runs": rows,
                       "augmentation": augment_rows})


if __name__ == "__main__":
    with progress_on_stderr():
        main()
