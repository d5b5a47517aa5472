"""Train the default student of each pair and ship it in checkpoints/.

For every pair, each CMCD variant (cmc, cmd, cmc+l2) is distilled with the same settings; the one
with the best zero-label head accuracy on the *validation* split is saved as
checkpoints/student-PAIR.{safetensors,json}, with every candidate's validation score and the
winner's test metrics in its metadata. Test numbers play no part in the choice. These longer runs
(width 32; each student's epochs are in its JSON) use the batched target augmentations. Each
shipped student's JSON also holds its calibration (confidence and "not sure",
cmcd.eval.confidence), fitted on validation; digits-audio's is fitted on real speakers its
leave-one-speaker-out folds never heard (cmcd.eval.people; the folds come from
scripts/real_speakers.py, at --fold-epochs and --fold-width).

    python scripts/ship_students.py [--pairs digits-sketch ...] [--methods cmc ...] [--epochs 40]
                                    [--width 32]
    python scripts/ship_students.py --calibrate-only [--pairs ...]   # refit the calibration of
                                                    # the shipped students; weights untouched

--methods narrows the candidates (on a slow machine, to the variant that won before);
--continue-shipped starts from the shipped student's weights (for a pair whose training data grew,
on a machine too slow to train it again from scratch; its JSON then says so under "continued_from").
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmcd.bench import speakers  # noqa: E402
from cmcd.eval import people  # noqa: E402
from cmcd.eval.classify import student_stem, weights_digest  # noqa: E402
from cmcd.eval.confidence import calibrate_student  # noqa: E402
from cmcd.modalities import pairs  # noqa: E402
from cmcd.models.checkpoints import load_student, save_student, update_student_metadata  # noqa: E402
from cmcd.paths import checkpoint_root  # noqa: E402
from cmcd.runtime import progress_on_stderr  # noqa: E402
from cmcd.train.config import DistillConfig  # noqa: E402
from cmcd.train.distill import distill  # noqa: E402

CANDIDATES = ("cmc", "cmd", "cmc+l2")


def calibrate(student, pair: str, teacher: str, gap: float | None, folds: speakers.Plan) -> dict | None:
    """A pair with real speakers is calibrated on real people the student never heard
    (cmcd.eval.people): on its leave-one-speaker-out folds, or, when it trained on none of them,
    on every speaker with the student as its own fold. Other pairs on validation
    (cmcd.eval.confidence)."""
    options = pairs.get_spec(pair).render_options
    if "real_speakers" not in options:
        return calibrate_student(student, pair, teacher, gap)
    share = round(100 * options["real_share"])
    if share == 0:
        return people.calibrate_with_folds(student, pair, dict.fromkeys(options["real_speakers"], student),
                                           teacher, heard=())
    return people.calibrate_with_folds(student, pair, speakers.fold_students(folds, share), teacher)


def shipped_start(pair: str, width: int) -> tuple[dict | None, dict | None]:
    """The shipped student's weights, to continue from, and what they were (digest, method, epochs)."""
    student, metadata = load_student(student_stem(pair))
    if metadata.get("config", {}).get("width") != width:
        sys.exit(f"--continue-shipped: the shipped {pair} student has width "
                 f"{metadata.get('config', {}).get('width')}, not {width}")
    return student.state_dict(), {"student_digest": weights_digest(pair), "method": metadata["method"],
                                  "epochs": metadata["config"]["epochs"]}


def ship(pair: str, methods: list[str], epochs: int, width: int, device: str, folds: speakers.Plan,
         continue_shipped: bool = False) -> dict:
    runs = {}
    start, started_from = shipped_start(pair, width) if continue_shipped else (None, None)
    for method in methods:
        config = DistillConfig(pair=pair, method=method, epochs=epochs, width=width, device=device,
                               augment=True)  # the shipped students were trained with it
        runs[method] = distill(config, start_from=start)
        print(f"{pair} {method}: validation head accuracy "
              f"{runs[method].val_history[-1]['head']:.4f}", file=sys.stderr, flush=True)
    validation = {method: run.val_history[-1]["head"] for method, run in runs.items()}
    best = max(validation, key=validation.get)
    run = runs[best]
    metadata = {"pair": pair, "method": best, "teacher": run.config.teacher,
                "selected_on": "validation zero-label head accuracy", "candidates": validation,
                "config": run.config.to_dict(), "metrics": run.metrics, "calibration": None,
                **({"continued_from": started_from} if started_from else {})}
    # Saved before calibrating, so that a calibration that cannot run yet (its folds still
    # training) loses no weights: --calibrate-only fits it later.
    save_student(checkpoint_root() / f"student-{pair}", run.student, metadata)
    metadata["calibration"] = calibrate(run.student, pair, run.config.teacher, run.config.gap, folds)
    update_student_metadata(student_stem(pair), calibration=metadata["calibration"])
    return metadata


def calibrate_shipped(pair: str, folds: speakers.Plan) -> dict:
    """Fit the calibration of the pair's shipped student and write it into its JSON alone."""
    student, metadata = load_student(student_stem(pair))
    gap = metadata.get("config", {}).get("gap")
    calibration = calibrate(student, pair, metadata.get("teacher", "ft"), gap, folds)
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
    parser.add_argument("--fold-epochs", type=int, default=speakers.Plan.epochs,
                        help="epochs of the leave-one-speaker-out folds that calibrate digits-audio")
    parser.add_argument("--fold-width", type=int, default=speakers.Plan.width,
                        help="width of those folds (scripts/real_speakers.py trains them)")
    parser.add_argument("--continue-shipped", action="store_true",
                        help="start from the shipped student's weights instead of a fresh student")
    args = parser.parse_args()
    folds = speakers.Plan(epochs=args.fold_epochs, width=args.fold_width)
    if args.calibrate_only:
        print(json.dumps({pair: calibrate_shipped(pair, folds) for pair in args.pairs}, indent=2))
        return
    summary = {pair: ship(pair, args.methods, args.epochs, args.width, args.device, folds,
                          args.continue_shipped) for pair in args.pairs}
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
