"""Train the default student of each pair and ship it in checkpoints/.

For every pair, each CMCD variant (cmc, cmd, cmc+l2) is distilled with the same settings; the one
with the best zero-label head accuracy on the *validation* split is saved as
checkpoints/student-PAIR.{safetensors,json}, with every candidate's validation score and the
winner's test metrics in its metadata. Test numbers play no part in the choice. These longer runs
(width 32; each student's epochs are in its JSON) use the batched target augmentations. Each
shipped student's JSON also holds its calibration (confidence and "not sure",
cmcd.eval.confidence), fitted on validation.

    python scripts/ship_students.py [--pairs digits-sketch ...] [--methods cmc ...] [--epochs 40]
                                    [--width 32]
    python scripts/ship_students.py --calibrate-only [--pairs ...]   # refit the calibration of
                                                    # the shipped students; weights untouched

--methods narrows the candidates (on a slow machine, to the variant that won before).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmcd.eval.classify import student_stem  # noqa: E402
from cmcd.eval.confidence import calibrate_student  # noqa: E402
from cmcd.modalities import pairs  # noqa: E402
from cmcd.models.checkpoints import load_student, save_student, update_student_metadata  # noqa: E402
from cmcd.paths import checkpoint_root  # noqa: E402
from cmcd.runtime import progress_on_stderr  # noqa: E402
from cmcd.train.config import DistillConfig  # noqa: E402
from cmcd.train.distill import distill  # noqa: E402

CANDIDATES = ("cmc", "cmd", "cmc+l2")


def ship(pair: str, methods: list[str], epochs: int, width: int, device: str) -> dict:
    runs = {}
    for method in methods:
        config = DistillConfig(pair=pair, method=method, epochs=epochs, width=width, device=device,
                               augment=True)  # the shipped students were trained with it
        runs[method] = distill(config)
        print(f"{pair} {method}: validation head accuracy "
              f"{runs[method].val_history[-1]['head']:.4f}", file=sys.stderr, flush=True)
    validation = {method: run.val_history[-1]["head"] for method, run in runs.items()}
    best = max(validation, key=validation.get)
    run = runs[best]
    metadata = {"pair": pair, "method": best, "teacher": run.config.teacher,
                "selected_on": "validation zero-label head accuracy", "candidates": validation,
                "config": run.config.to_dict(), "metrics": run.metrics,
                "calibration": calibrate_student(run.student, pair, run.config.teacher, run.config.gap)}
    save_student(checkpoint_root() / f"student-{pair}", run.student, metadata)
    return metadata


def calibrate_shipped(pair: str) -> dict:
    """Fit the calibration of the pair's shipped student and write it into its JSON alone."""
    student, metadata = load_student(student_stem(pair))
    gap = metadata.get("config", {}).get("gap")
    calibration = calibrate_student(student, pair, metadata.get("teacher", "ft"), gap)
    update_student_metadata(student_stem(pair), calibration=calibration)
    print(f"{pair}: {calibration['score']} score, T = {calibration['temperature']}", file=sys.stderr)
    return {key: calibration[key] for key in ("temperature", "score", "threshold", "validation")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=list(pairs.PAIRS))
    parser.add_argument("--methods", nargs="+", default=list(CANDIDATES), choices=CANDIDATES)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-app-items", action="store_true",
                        help="skip writing the app's test items (run ship_app_items.py later)")
    parser.add_argument("--calibrate-only", action="store_true",
                        help="refit the shipped students' calibration; weights untouched")
    args = parser.parse_args()
    if args.calibrate_only:
        print(json.dumps({pair: calibrate_shipped(pair) for pair in args.pairs}, indent=2))
        return
    summary = {pair: ship(pair, args.methods, args.epochs, args.width, args.device)
               for pair in args.pairs}
    print(json.dumps({pair: {"method": m["method"], "candidates": m["candidates"],
                             "test_zero_label_acc": m["metrics"]["zero_label_acc"]}
                      for pair, m in summary.items()}, indent=2))
    # The app's shipped test items hold the students' embeddings: write them again.
    if not args.no_app_items:
        subprocess.run([sys.executable, str(Path(__file__).with_name("ship_app_items.py"))],
                       check=True)


if __name__ == "__main__":
    with progress_on_stderr():
        main()
