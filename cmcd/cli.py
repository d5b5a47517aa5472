"""The `cmcd` command line. With --json, exactly one JSON object goes to stdout; progress and
errors go to stderr (the library's log messages, shown as "cmcd: ..." while a command runs)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

from cmcd.data import sources
from cmcd.modalities import pairs
from cmcd.runtime import DEVICES, progress_on_stderr

log = logging.getLogger(__name__)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2))


def cmd_pairs(args) -> int:
    rows = pairs.describe_pairs()
    if args.json:
        _print_json({"pairs": rows})
        return 0
    for row in rows:
        sizes = ", ".join(f"{split} {count:,}" for split, count in row["sizes"].items())
        print(f"{row['name']:16s} rgb -> {row['target']:7s} {row['pairing']} pairs; {sizes}")
    return 0


def _pair_names(name: str) -> list[str]:
    return list(pairs.PAIRS) if name == "all" else [pairs.get_spec(name).name]


def cmd_data(args) -> int:
    from cmcd.viz.contact_sheet import write_contact_sheet

    written = {}
    for name in _pair_names(args.pair):
        data = pairs.load_pair(name, gap=args.gap, seed=args.seed)
        entry = {"sizes": data.sizes(), "gap": data.gap, "source": data.source_origin}
        if args.sheet_dir:
            path = write_contact_sheet(data, Path(args.sheet_dir) / f"{name}.png")
            entry["contact_sheet"] = str(path)
        written[name] = entry
        if not args.json:
            print(f"{name}: {entry}")
    if args.json:
        _print_json({"pairs": written})
    return 0


def cmd_pretrain(args) -> int:
    from cmcd.train.pretrain import PretrainConfig, fine_tune_from_ssl, pretrain

    config = PretrainConfig(dataset=args.dataset, ssl_epochs=args.epochs, ft_epochs=args.ft_epochs,
                            batch_size=args.batch_size, width=args.width, seed=args.seed,
                            device=args.device, out=args.out)
    results = (fine_tune_from_ssl if args.ft_only else pretrain)(config)
    if args.json:
        _print_json(results)
    return 0


def _distill_progress(event: dict) -> None:
    if event["kind"] == "step":
        log.info(f"step {event['step']}/{event['total_steps']} (epoch {event['epoch']}): "
                 f"loss {event['loss']:.4f}, {event['elapsed_s']:.1f} s")
    else:
        log.info(f"epoch {event['epoch']}: validation zero-label accuracy head "
                 f"{event['head']:.4f}, prototype {event['prototype']:.4f}")


PAIR_CHOICES = (f"one of {', '.join(pairs.PAIRS)}, or PAIR{pairs.WITHOUT}INGREDIENT (an ablation "
                "variant; `cmcd pairs` lists the pairs)")


def pair_name(name: str) -> str:
    """--pair: a registered pair or a variant of one (argparse reports the reason)."""
    try:
        pairs.get_spec(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return name


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _run_settings():
    from cmcd.train.config import DistillConfig
    from cmcd.train.options import describe

    return describe(DistillConfig)


def _loss_settings() -> dict:
    from cmcd.train.objectives import option_settings

    return option_settings()


def _alias_note(name: str) -> str:
    from cmcd.train.objectives import OBJECTIVES

    return "".join(f"; for {method}: {_flag(entry.options.aliases[name])}"
                   for method, entry in OBJECTIVES.items() if name in entry.options.aliases)


def _add_setting(parser, info, help: str) -> None:
    """A flag for a setting; unset flags stay out of the namespace, so the dataclass defaults
    are the only defaults."""
    if info.kind is bool:
        parser.add_argument(_flag(info.name), action=argparse.BooleanOptionalAction,
                            default=argparse.SUPPRESS, help=help)
    else:
        if info.name == "pair":
            parser.add_argument(_flag(info.name), type=pair_name, default=argparse.SUPPRESS,
                                metavar="PAIR", help=f"{help}; {PAIR_CHOICES}")
            return
        choices = info.limits.get("choices")
        parser.add_argument(_flag(info.name), type=info.kind, default=argparse.SUPPRESS,
                            choices=choices, metavar=None if choices else info.name.upper(),
                            help=help)


def add_distill_settings(parser) -> None:
    runs = parser.add_argument_group("run settings")
    for info in _run_settings():
        default = "" if info.default is None else f" (default: {info.default})"
        _add_setting(runs, info, info.help + default)
    losses = parser.add_argument_group("loss options (each belongs to some methods; "
                                       "`cmcd methods` lists them)")
    for name, owners in _loss_settings().items():
        defaults = ", ".join(f"{method} {info.default}" for method, info in owners)
        _add_setting(losses, owners[0][1], f"{owners[0][1].help}; {defaults}{_alias_note(name)}")


def cmd_distill(args) -> int:
    from cmcd import cli_segmentation
    from cmcd.eval.records import summary_line
    from cmcd.train.config import DistillConfig
    from cmcd.train.distill import distill
    from cmcd.train.parallel import is_main_process
    from cmcd.train.run_files import check_run_folder, save_run

    if args.task == "segmentation":
        return cli_segmentation.cmd_distill(args, _flag)
    names = {info.name for info in _run_settings()} | set(_loss_settings())
    given = {name: value for name, value in vars(args).items() if name in names}
    segmentation_only = set(vars(args)) & (set(cli_segmentation.segmentation_settings()) - names)
    if segmentation_only:
        raise ValueError(f"{_flag(min(segmentation_only))} is a setting of --task segmentation")
    config = DistillConfig.from_flat(spell=_flag, **given)
    if not is_main_process():  # under torchrun, only rank 0 reports and writes the run
        distill(config)
        return 0
    out = None if args.out is None else Path(args.out or default_run_folder(config))
    if out:
        check_run_folder(out)  # before training, not after
    run = distill(config, progress=_distill_progress)
    if out:
        from cmcd.eval.confidence import calibrate_student

        log.info("calibrating the student's confidence and 'not sure' on validation items and junk")
        calibration = calibrate_student(run.student, config.pair, config.teacher, config.gap)
        save_run(run, out, calibration)
        log.info(f"wrote {out}")
    if args.json:
        _print_json(run.metrics)
    else:
        print(summary_line(run.metrics))
    return 0


def default_run_folder(config) -> Path:
    """Where a bare `cmcd distill --out` saves the run: checkpoints/PAIR-METHOD-TEACHER-seedSEED."""
    from cmcd.paths import students_dir

    return students_dir() / f"{config.pair}-{config.method}-{config.teacher}-seed{config.seed}"


def describe_methods() -> dict:
    """Each method's options: type, default, help and limits."""
    from cmcd.train.objectives import OBJECTIVES
    from cmcd.train.options import describe

    return {method: {info.name: {"type": info.kind.__name__, "default": info.default,
                                 "help": info.help, **info.limits}
                     for info in describe(entry.options)}
            for method, entry in OBJECTIVES.items()}


def cmd_methods(args) -> int:
    methods = describe_methods()
    if args.json:
        _print_json({"methods": methods})
        return 0
    for method, options in methods.items():
        print(method)
        for name, option in options.items():
            print(f"  {_flag(name):22s} {option['default']!s:8s} {option['help']}")
    return 0


def cmd_classify(args) -> int:
    from cmcd import cli_segmentation
    from cmcd.eval.classify import classify_files, describe

    if args.task == "segmentation":
        results, write_out = cli_segmentation.segment_the_files(args)
        return report_classified(results, cli_segmentation.describe_segmented, args.json, write_out,
                                 indent=None)
    if args.out:
        raise ValueError("--out (a mask file) needs --task segmentation")
    results = classify_files(args.pair, [Path(f) for f in args.files], args.run_dir)
    return report_classified(results, describe, args.json)


def report_classified(results: list[dict], describe, as_json: bool, write_out=None,
                      indent: int | None = 2) -> int:
    """What `cmcd classify` reports for either task: one entry per file (`describe` words a
    successful one), errors logged; `write_out` gets the one file's result when it succeeded. The
    exit status is 1 when one file failed, or when every file did."""
    failed = [r for r in results if "error" in r]
    for entry in failed:
        log.error(entry["error"])
    if len(results) == 1 and failed:
        return 1
    if write_out is not None:
        write_out(results[0])
    if as_json:
        output = {k: v for k, v in results[0].items() if k != "file"} if len(results) == 1 \
            else {"results": results}
        print(json.dumps(output, indent=indent))
    else:
        for entry in results:
            if "label" in entry:
                print(f"{entry['file']}: {describe(entry)}")
    return 1 if len(failed) == len(results) else 0


def _export_embeddings(args) -> dict[str, str]:
    """A run's test embeddings (with PCA map coordinates), or the shipped student's app test items
    (with their UMAP and PCA coordinates)."""
    from cmcd.eval.embedding_export import run_embeddings, write_embeddings

    if args.run:
        from cmcd.viz.maps import coordinates

        pair, found = run_embeddings(Path(args.run))
        projections = {"pca": coordinates(found["teacher"], found["student"], "pca")}
    elif args.pair:
        from cmcd.app.shipped import shipped_test_embeddings

        pair, found = args.pair, shipped_test_embeddings(args.pair)
        projections = found["coordinates"]
    else:
        raise ValueError("--embeddings needs --run runs/NAME (a run's student) or --pair PAIR "
                         "(the shipped student)")
    written = write_embeddings(Path(args.embeddings), pair, found, projections)
    return {kind: str(path) for kind, path in written.items()}


def cmd_export(args) -> int:
    from cmcd.eval.student_export import write_bundle, write_onnx

    if not (args.onnx or args.zip or args.embeddings):
        raise ValueError("nothing to export: give --onnx FILE, --zip FILE or --embeddings FOLDER")
    if (args.onnx or args.zip) and not args.run:
        raise ValueError("--onnx and --zip export a run's student: give --run runs/NAME")
    written = {}
    if args.onnx:
        written["onnx"] = str(write_onnx(Path(args.run), Path(args.onnx)))
    if args.zip:
        written["zip"] = str(write_bundle(Path(args.run), Path(args.zip)))
    if args.embeddings:
        written |= _export_embeddings(args)
    if args.json:
        _print_json({"written": written})
    else:
        print("\n".join(f"{kind}: {path}" for kind, path in written.items()))
    return 0


def cmd_app(args) -> int:
    from cmcd.app import main as app

    app.launch()
    return 0


def _bench_command(args) -> str:
    """The command line that reproduces a paper, theory, tuning or other study benchmark (recorded
    in its results)."""
    words = ["cmcd", "bench", args.what, *(["--quick"] if args.quick else [])]
    words += [] if args.seeds is None else ["--seeds", str(args.seeds)]
    words += [] if args.workers == 1 else ["--workers", str(args.workers)]
    words += [] if args.out == "results" else ["--out", args.out]
    words += [] if args.device == "auto" else ["--device", args.device]
    return " ".join(words)


def cmd_bench(args) -> int:
    """Each benchmark is a module cmcd.bench.WHAT (hyphens as underscores) with run(**options) and
    format_report(report)."""
    study = {"out": args.out, "quick": args.quick, "seeds": args.seeds, "workers": args.workers,
             "resume": args.resume, "report_only": args.report_only,
             "command": _bench_command(args), "device": args.device}
    options = {"data": {"cache_root": args.cache}, "speed": {"device": args.device}, "app": {},
               "inputs": {"out": args.out},
               "paper": study, "theory": study, "segmentation": study, "tuning": study,
               "segmentation-tuning": study, "ingredients": study, "budget": study}
    module = importlib.import_module(f"cmcd.bench.{args.what.replace('-', '_')}")
    report = module.run(**options[args.what])
    if args.json:
        _print_json(report)
    else:
        print(module.format_report(report))
    return 0


JSON_HELP = "print one JSON object on stdout (progress goes to stderr)"


def _add_pairs_parser(subcommands) -> None:
    p = subcommands.add_parser("pairs", help="list the registered modality pairs")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_pairs)


def _add_data_parser(subcommands) -> None:
    p = subcommands.add_parser("data", help="build (or load) a pair's data; optionally write contact sheets")
    p.add_argument("--pair", default="all", metavar="PAIR",  # checked by the handler: one line
                   help=f"'all' (default) or {PAIR_CHOICES}")
    p.add_argument("--gap", type=float, default=None, help="modality gap 0..1 (default: the pair's)")
    p.add_argument("--seed", type=int, default=0, help="rendering seed (default: 0)")
    p.add_argument("--sheet-dir", default=None, help="write PAIR.png contact sheets here")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_data)


def _add_pretrain_parser(subcommands) -> None:
    p = subcommands.add_parser("pretrain", help="train the ssl and ft teachers of a dataset")
    p.add_argument("--dataset", default="digits", choices=list(sources.LOADERS),
                   help="source dataset: %(choices)s (default: digits)")
    p.add_argument("--epochs", type=int, default=30, help="SimCLR epochs")
    p.add_argument("--ft-epochs", type=int, default=10, help="supervised fine-tuning epochs (ft)")
    p.add_argument("--ft-only", action="store_true", help="train only the ft teacher again, from the "
                   "saved ssl teacher in --out, on the current data (the ssl teacher stays as it is)")
    p.add_argument("--batch-size", type=int, default=256, help="photos per step (default: 256)")
    p.add_argument("--width", type=int, default=32, help="encoder width (default: 32)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    p.add_argument("--out", default=None, help="folder for the teachers (default: the shipped "
                   "checkpoints, $CMCD_CHECKPOINTS)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_pretrain)


def _add_distill_parser(subcommands) -> None:
    from cmcd.cli_segmentation import TASKS, add_segmentation_settings

    p = subcommands.add_parser("distill", help="distil a student for a pair")
    p.add_argument("--task", default="recognition", choices=TASKS,
                   help="recognition (default) or segmentation (dense losses; depth pairs)")
    add_distill_settings(p)
    existing = {info.name for info in _run_settings()} | set(_loss_settings())
    add_segmentation_settings(p, existing, _add_setting)
    p.add_argument("--out", nargs="?", const="", default=None, metavar="FOLDER",
                   help="save the run (student, calibration, metrics, embeddings) in FOLDER; a bare "
                   "--out saves it in checkpoints/PAIR-METHOD-TEACHER-seedSEED ($CMCD_STUDENTS)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_distill)


def _add_methods_parser(subcommands) -> None:
    p = subcommands.add_parser("methods", help="list the methods with their options, defaults and help")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_methods)


def _add_classify_parser(subcommands) -> None:
    p = subcommands.add_parser("classify", help="classify (or segment) target files with a "
                               "distilled student")
    p.add_argument("--pair", required=True, type=pair_name, metavar="PAIR",
                   help=f"the pair whose student reads the files: {PAIR_CHOICES}")
    p.add_argument("--task", default="recognition", choices=["recognition", "segmentation"],
                   help="segmentation: a label per pixel (depth pairs)")
    p.add_argument("--out", default=None, help="segmentation: write the mask of the one FILE as a "
                   "palette PNG (each pixel's value its label: 0 background, class + 1)")
    p.add_argument("--run", dest="run_dir", default=None, help="a run folder (default: the shipped student)")
    p.add_argument("files", nargs="+", metavar="FILE", help="files of the pair's target modality")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_classify)


def _add_bench_parser(subcommands) -> None:
    p = subcommands.add_parser("bench", help="measure: tuning (every method's settings chosen on "
                       "validation with the same budget), budget (accuracy against training steps, "
                       "the main table's budget chosen on validation), paper (methods x pairs "
                       "over seeds, with the tuned settings), theory (error against TV distance), "
                       "segmentation (dense distillation on the depth pairs, with the settings "
                       "segmentation-tuning chose for each dense loss on validation with the same "
                       "sweep), data (build and load times), "
                       "speed, app (start-up, classify latency), inputs (real recordings, drawing "
                       "styles, junk and 'not sure'), ingredients (what each people-like "
                       "ingredient of the training data adds, on validation)")
    p.add_argument("what", help="which benchmark: %(choices)s",
                   choices=["tuning", "budget", "paper", "theory", "segmentation",
                            "segmentation-tuning", "data", "speed", "app", "inputs", "ingredients"])
    studies = "tuning, budget, paper, theory, segmentation, segmentation-tuning, ingredients"
    p.add_argument("--out", default="results", help=f"{studies}, inputs: folder for the results")
    p.add_argument("--quick", action="store_true", help=f"{studies}: tiny runs that check the "
                   "pipeline and file formats (numbers mean nothing; paper --quick uses the default "
                   "settings instead of tuning.json, segmentation --quick instead of "
                   "segmentation-tuning.json)")
    p.add_argument("--seeds", type=int, default=None, help="budget, paper, theory, segmentation, "
                   "ingredients: seeds per setting (paper and ingredients: 5, the paper's ft "
                   "ablation at most 3; budget and theory: 3; segmentation: 5; tuning and "
                   "segmentation-tuning use a seed of their own)")
    p.add_argument("--workers", type=int, default=1, help=f"{studies}: runs at once, each in a "
                   "process of its own (use several on a GPU or a many-core CPU)")
    p.add_argument("--resume", action="store_true", help=f"{studies}: keep finished runs of an "
                   "interrupted benchmark in --out and do the rest")
    p.add_argument("--report-only", action="store_true", help=f"{studies}: rewrite the tables "
                   "and figures from the results file, without training")
    p.add_argument("--device", default="auto", choices=list(DEVICES),
                   help="where runs train: %(choices)s (default: auto)")
    p.add_argument("--cache", default=None, help="data: cache folder (default: a new empty one)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_bench)


def _add_export_parser(subcommands) -> None:
    p = subcommands.add_parser("export", help="take a student elsewhere: ONNX, a zip bundle, or "
                               "its test embeddings as Parquet and Embedding Projector TSVs")
    p.add_argument("--run", default=None, metavar="FOLDER", help="a run folder (cmcd distill --out)")
    p.add_argument("--pair", default=None, type=pair_name, metavar="PAIR", help="--embeddings "
                   f"without --run: the shipped student of this pair, {PAIR_CHOICES}")
    p.add_argument("--onnx", default=None, metavar="FILE", help="write the run's student and its "
                   "teacher's head as one ONNX file (inputs 'target'; outputs 'embedding', 'logits')")
    p.add_argument("--zip", default=None, metavar="FILE", help="write a zip: student.safetensors, "
                   "student.json, config.json, student.onnx, README.txt")
    p.add_argument("--embeddings", default=None, metavar="FOLDER", help="write the test items' "
                   "teacher and student embeddings here: embeddings.parquet, vectors.tsv, metadata.tsv")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_export)


def _add_app_parser(subcommands) -> None:
    p = subcommands.add_parser("app", help="start the app (GRADIO_SERVER_NAME, GRADIO_SERVER_PORT: "
                               "where it listens; default 127.0.0.1:7860)")
    p.set_defaults(handler=cmd_app)


def build_parser() -> argparse.ArgumentParser:
    from cmcd import __version__

    parser = argparse.ArgumentParser(prog="cmcd", description="Cross-modality contrastive "
                                     "distillation: rich-modality teachers, poor-modality students.")
    parser.add_argument("--version", action="version", version=f"cmcd {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for add_parser in (_add_pairs_parser, _add_data_parser, _add_pretrain_parser, _add_distill_parser,
                       _add_methods_parser, _add_classify_parser, _add_export_parser, _add_bench_parser,
                       _add_app_parser):
        add_parser(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with progress_on_stderr():
        try:
            return args.handler(args)
        except (ValueError, FileNotFoundError) as error:
            print(f"cmcd: error: {error}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
