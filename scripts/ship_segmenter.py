"""Train the segmentation student the app's Try-it depth panel shows, and ship it in checkpoints/.

For each pair, the dense CMCD variants (cmc, cmd) are distilled with the SegmentConfig defaults;
the one with the best zero-label mIoU on the *validation* split is saved, with the teacher's dense
head that reads it, as checkpoints/segmenter-PAIR.{safetensors,json} (every candidate's
validation score and the winner's test metrics in its metadata). Test numbers play no part in
the choice.

    python scripts/ship_segmenter.py [--pairs digits-depth ...] [--steps S]
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmcd.models.dense import save_segmenter  # noqa: E402
from cmcd.paths import checkpoint_root  # noqa: E402
from cmcd.runtime import progress_on_stderr  # noqa: E402
from cmcd.train.config import SegmentConfig  # noqa: E402
from cmcd.train.segment import segment_distill  # noqa: E402

CANDIDATES = ("cmc", "cmd")


def ship(pair: str, steps: int | None) -> dict:
    runs = {}
    for method in CANDIDATES:
        settings = {} if steps is None else {"steps": steps}
        runs[method] = segment_distill(SegmentConfig(pair=pair, method=method, **settings))
        print(f"{pair} {method}: validation zero-label mIoU "
              f"{runs[method].metrics['val_miou_zero_label']:.4f}", file=sys.stderr, flush=True)
    validation = {method: run.metrics["val_miou_zero_label"] for method, run in runs.items()}
    best = max(validation, key=validation.get)
    run = runs[best]
    metadata = {"pair": pair, "method": best, "loss": run.config.loss_name,
                "teacher": run.config.teacher, "task": "segmentation",
                "selected_on": "validation zero-label mIoU", "candidates": validation,
                "config": run.config.to_dict(), "metrics": run.metrics}
    save_segmenter(checkpoint_root() / f"segmenter-{pair}", run.student, run.head, metadata)
    return metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=["digits-depth"])
    parser.add_argument("--steps", type=int, default=None, help="default: SegmentConfig's")
    args = parser.parse_args()
    summary = {pair: ship(pair, args.steps) for pair in args.pairs}
    print(json.dumps({pair: {"method": m["method"], "candidates": m["candidates"],
                             "test_miou_zero_label": m["metrics"]["miou_zero_label"]}
                      for pair, m in summary.items()}, indent=2))


if __name__ == "__main__":
    with progress_on_stderr():
        main()
