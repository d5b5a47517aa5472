"""How the segmentation defaults were chosen: a small sweep scored on the validation split only.

    python scripts/tune_segmentation.py [--pair digits-depth] [--seed 0]

Each setting trains one dense-CMC student (seed 0) and is scored by its zero-label mIoU on the
*validation* items, with its training time on this machine (CPU seconds of the process and wall
seconds). Then, for the chosen student, the few-label fine-tuning schedule (learning rate and
steps) is scored on validation with 1, 5 and 10 labelled maps per class. The best validation
scores become the defaults (the first row trains at the defaults of its day, recorded under
"defaults"). Writes results/segmentation-tuning.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cmcd.data.cache import atomic_write_json  # noqa: E402
from cmcd.runtime import progress_on_stderr  # noqa: E402
from cmcd.train.config import SegmentConfig  # noqa: E402
from cmcd.train.segment import few_label_scores, train_segmenter, validation_miou  # noqa: E402

# steps, locations, lr and pairing around the defaults, one at a time
SETTINGS = [
    *(dict(lr=lr) for lr in (0.003, 0.006, 0.012, 0.02)),
    *(dict(steps=steps) for steps in (200, 400)),
    dict(locations=16),
    dict(registered=True),
    dict(method="l2"),
]
FINE_TUNING = [dict(fine_tune_lr=lr, fine_tune_steps=steps) for lr in (3e-4, 1e-3, 3e-3)
               for steps in (10, 20)]


def timed_training(config: SegmentConfig):
    started, cpu = time.perf_counter(), time.process_time()
    setup, _, train_s = train_segmenter(config)
    return setup, {"val_miou_zero_label": validation_miou(setup), "train_s": round(train_s, 1),
                   "train_cpu_s": round(time.process_time() - cpu, 1),
                   "wall_s": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="digits-depth")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    defaults = SegmentConfig(pair=args.pair, seed=args.seed)
    run_settings = {k: v for k, v in defaults.to_dict().items() if k != "loss"}
    rows = []
    for setting in [{}, *SETTINGS]:
        _, scores = timed_training(SegmentConfig.from_flat(**{**run_settings, **setting}))
        rows.append({**setting, **scores})
        print(json.dumps(rows[-1]), flush=True)
    setup, _ = timed_training(defaults)
    schedules = []
    for setting in FINE_TUNING:
        setup.config.fine_tune_lr = setting["fine_tune_lr"]
        setup.config.fine_tune_steps = setting["fine_tune_steps"]
        scores = few_label_scores(setup, setup.student, setup.teacher.head, "val")
        schedules.append({**setting, "val_miou_few_label": scores["miou"]})
        print(json.dumps(schedules[-1]), flush=True)
    atomic_write_json(ROOT / "results" / "segmentation-tuning.json",
                      {"command": "python scripts/tune_segmentation.py", "pair": args.pair,
                       "seed": args.seed, "split": "validation", "defaults": defaults.to_dict(),
                       "runs": rows, "fine_tuning": schedules})


if __name__ == "__main__":
    with progress_on_stderr():
        main()
