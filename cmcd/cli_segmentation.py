"""`cmcd distill --task segmentation` and `cmcd classify --task segmentation`: the command line of
the segmentation task (cmcd.cli builds the parsers and hands these commands over).

Under --task segmentation, --method cmc, cmd or l2 picks the dense loss dense-cmc, dense-cmd or
dense-l2; the run settings are those of `SegmentConfig`."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path

from cmcd.data.cache import atomic_write_bytes

log = logging.getLogger(__name__)
TASKS = ("recognition", "segmentation")


def segmentation_settings() -> dict[str, object]:
    """Every setting name of a segmentation run (run settings and dense loss options) with its
    FieldInfo."""
    from cmcd.train.config import SEGMENTATION_METHODS, SegmentConfig, loss_class
    from cmcd.train.options import describe

    infos = {info.name: info for info in describe(SegmentConfig)}
    for method in SEGMENTATION_METHODS:
        infos.update({info.name: info for info in describe(loss_class(method).Options)
                      if info.name not in infos})
    return infos


def add_segmentation_settings(parser, existing: set[str], add_setting) -> None:
    """Flags for the segmentation settings that recognition does not have already; the shared
    ones keep their flags, with the segmentation defaults named in the group's description."""
    from cmcd.train.config import SEGMENTATION_METHODS

    settings = segmentation_settings()
    shared = ", ".join(f"{name.replace('_', '-')} {info.default}" for name, info in settings.items()
                       if name in existing and info.default is not None)
    group = parser.add_argument_group(
        f"segmentation settings (--task segmentation; --method {', '.join(SEGMENTATION_METHODS)} "
        "means the dense loss)", f"Segmentation defaults of the shared settings: {shared}.")
    for name, info in settings.items():
        if name not in existing:
            default = "" if info.default is None else f" (default: {info.default})"
            add_setting(group, info, info.help + default)


def _progress(event: dict) -> None:
    log.info(f"step {event['step']}/{event['total_steps']}: loss {event['loss']:.4f}, "
             f"{event['elapsed_s']:.1f} s")


def summary_line(m: dict) -> str:
    few = "/".join(f"{m['miou_few_label'][k]:.3f}" for k in ("1", "5", "10"))
    return (f"{m['pair']} {m['method']} ({m['loss']}, teacher {m['teacher']}, seed {m['seed']}, "
            f"{m['device']}): zero-label mIoU {m['miou_zero_label']:.3f}, pixel accuracy "
            f"{m['pixel_acc']:.3f}; few-label mIoU (1/5/10 maps per class) {few}; the teacher's "
            f"mIoU on photos {m['teacher_miou']:.3f}; {m['wall_s']:.1f} s in all, "
            f"{m['train_s']:.1f} s training")


def cmd_distill(args: argparse.Namespace, spell) -> int:
    from cmcd.train.config import SegmentConfig
    from cmcd.train.run_files import check_run_folder
    from cmcd.train.segment import save_segment_run, segment_distill

    known = set(segmentation_settings())
    given = {name: value for name, value in vars(args).items()
             if name not in ("task", "out", "json", "handler", "command")}
    strangers = sorted(set(given) - known)
    if strangers:
        raise ValueError(f"{spell(strangers[0])} is not a setting of --task segmentation")
    config = SegmentConfig.from_flat(spell=spell, **given)
    if args.out:
        check_run_folder(Path(args.out))  # before training, not after
    run = segment_distill(config, progress=_progress, log=log.info)
    if args.out:
        save_segment_run(run, Path(args.out))
        log.info(f"wrote {args.out}")
    if args.json:
        print(json.dumps(run.metrics, indent=2))
    else:
        print(summary_line(run.metrics))
    return 0


def describe_segmented(entry: dict) -> str:
    shares = ", ".join(f"{name} {share:.2f}" for name, share in entry["classes"].items())
    return f"{entry['label']} (pixels: {shares})"


def segment_the_files(args: argparse.Namespace) -> tuple[list[dict], Callable | None]:
    """`cmcd classify --task segmentation`: the results per file, and what writes the one file's
    mask under --out (None without it); cli.report_classified reports them."""
    from cmcd.eval.segment_files import segment_files
    from cmcd.viz.masks import mask_png

    if args.out and len(args.files) != 1:
        raise ValueError("--out writes the mask of one FILE; give one file")
    results = segment_files(args.pair, [Path(f) for f in args.files], args.run_dir)

    def write_out(result: dict) -> None:
        atomic_write_bytes(Path(args.out), mask_png(result["mask"]))
        log.info(f"wrote {args.out} (32x32, each pixel's value its label: 0 background, class + 1)")

    return results, write_out if args.out else None
