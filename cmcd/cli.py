"""The `cmcd` command line. With --json, exactly one JSON object goes to stdout; progress and
errors go to stderr."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from cmcd.data import pairs


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


def _stderr(message: str) -> None:
    print(f"cmcd: {message}", file=sys.stderr, flush=True)


def cmd_pretrain(args) -> int:
    from cmcd.train.pretrain import PretrainConfig, pretrain

    config = PretrainConfig(dataset=args.dataset, ssl_epochs=args.epochs, ft_epochs=args.ft_epochs,
                            batch_size=args.batch_size, width=args.width, seed=args.seed,
                            device=args.device, out=args.out)
    results = pretrain(config, report=_stderr)
    if args.json:
        _print_json(results)
    return 0


def _distill_progress(event: dict) -> None:
    if event["kind"] == "step":
        _stderr(f"step {event['step']}/{event['total_steps']} (epoch {event['epoch']}): "
                f"loss {event['loss']:.4f}, {event['elapsed_s']:.1f} s")
    else:
        _stderr(f"epoch {event['epoch']}: validation zero-label accuracy head "
                f"{event['head']:.4f}, prototype {event['prototype']:.4f}")


def cmd_distill(args) -> int:
    from cmcd.eval.records import summary_line
    from cmcd.train.config import DistillConfig
    from cmcd.train.distill import distill
    from cmcd.train.run_files import save_run

    config = DistillConfig(pair=args.pair, method=args.method, teacher=args.teacher,
                           epochs=args.epochs, n_pairs=args.n_pairs, batch_size=args.batch_size,
                           lr=args.lr, temperature=args.temperature, negatives=args.negatives,
                           l2_weight=args.l2_weight, width=args.width, gap=args.gap,
                           seed=args.seed, device=args.device)
    pairs.get_spec(config.pair)  # fail fast on a bad pair name
    run = distill(config, progress=_distill_progress)
    if args.out:
        save_run(run, Path(args.out))
        _stderr(f"wrote {args.out}")
    if args.json:
        _print_json(run.metrics)
    else:
        print(summary_line(run.metrics))
    return 0


def cmd_classify(args) -> int:
    from cmcd.eval.classify import classify_files

    results = classify_files(args.pair, [Path(f) for f in args.files], args.run_dir)
    failed = [r for r in results if "error" in r]
    for entry in failed:
        _stderr(entry["error"])
    if len(results) == 1:
        if failed:
            return 1
        output = {"label": results[0]["label"], "probs": results[0]["probs"]}
    else:
        output = {"results": results}
    if args.json:
        _print_json(output)
    else:
        for entry in results:
            if "label" in entry:
                print(f"{entry['file']}: {entry['label']} ({max(entry['probs'].values()):.2f})")
    return 1 if len(failed) == len(results) else 0


def _bench_command(args) -> str:
    """The command line that reproduces a paper or theory benchmark (recorded in its results)."""
    words = ["cmcd", "bench", args.what, *(["--quick"] if args.quick else [])]
    words += [] if args.seeds is None else ["--seeds", str(args.seeds)]
    words += [] if args.workers == 1 else ["--workers", str(args.workers)]
    words += [] if args.out == "results" else ["--out", args.out]
    return " ".join(words)


def cmd_bench(args) -> int:
    """Each benchmark is a module cmcd.bench_WHAT with run(**options) and format_report(report)."""
    study = {"out": args.out, "quick": args.quick, "seeds": args.seeds, "workers": args.workers,
             "resume": args.resume, "report_only": args.report_only,
             "command": _bench_command(args)}
    options = {"data": {"cache_root": args.cache}, "speed": {"device": args.device}, "app": {},
               "paper": study, "theory": study}
    module = importlib.import_module(f"cmcd.bench.{args.what}")
    report = module.run(**options[args.what])
    if args.json:
        _print_json(report)
    else:
        print(module.format_report(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmcd", description="Cross-modality contrastive "
                                     "distillation: rich-modality teachers, poor-modality students.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pairs", help="list the registered modality pairs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_pairs)

    p = sub.add_parser("data", help="build (or load) a pair's data; optionally write contact sheets")
    p.add_argument("--pair", default="all", help="a pair name or 'all' (default)")
    p.add_argument("--gap", type=float, default=None, help="modality gap 0..1 (default: the pair's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sheet-dir", default=None, help="write PAIR.png contact sheets here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_data)

    p = sub.add_parser("pretrain", help="train the ssl and ft teachers of a dataset")
    p.add_argument("--dataset", default="digits", choices=["digits", "fashion"])
    p.add_argument("--epochs", type=int, default=30, help="SimCLR epochs")
    p.add_argument("--ft-epochs", type=int, default=10, help="supervised fine-tuning epochs (ft)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="default: checkpoints/ ($CMCD_CHECKPOINTS)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_pretrain)

    from cmcd.train.objectives import METHODS
    from cmcd.train.config import DistillConfig

    defaults = DistillConfig()
    p = sub.add_parser("distill", help="distil a student for a pair")
    p.add_argument("--pair", default=defaults.pair)
    p.add_argument("--method", default=defaults.method, choices=list(METHODS))
    p.add_argument("--teacher", default=defaults.teacher, choices=["ssl", "ft"])
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--n-pairs", type=int, default=defaults.n_pairs, help="default: all pairs")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--temperature", type=float, default=defaults.temperature)
    p.add_argument("--negatives", default=defaults.negatives, choices=["batch", "bank"])
    p.add_argument("--l2-weight", type=float, default=defaults.l2_weight, help="cmc+l2's lambda")
    p.add_argument("--width", type=int, default=defaults.width)
    p.add_argument("--gap", type=float, default=None)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--device", default=defaults.device, choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--out", default=None, help="write the run here (runs/NAME)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_distill)

    p = sub.add_parser("classify", help="classify target files with a distilled student")
    p.add_argument("--pair", required=True)
    p.add_argument("--run", dest="run_dir", default=None, help="a run folder (default: the shipped student)")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_classify)

    p = sub.add_parser("bench", help="measure: paper (methods x pairs x budgets x teachers over "
                       "seeds), theory (error against TV distance), data (build and load times), "
                       "speed, app (start-up, classify latency)")
    p.add_argument("what", choices=["paper", "theory", "data", "speed", "app"])
    p.add_argument("--out", default="results", help="paper, theory: folder for the results")
    p.add_argument("--quick", action="store_true", help="paper, theory: tiny runs that check the "
                   "pipeline and file formats (numbers mean nothing)")
    p.add_argument("--seeds", type=int, default=None, help="paper, theory: seeds per setting "
                   "(default: 3 for paper, 1 for theory)")
    p.add_argument("--workers", type=int, default=1, help="paper, theory: runs at once, each in a "
                   "process of its own (use several on a GPU or a many-core CPU)")
    p.add_argument("--resume", action="store_true", help="paper, theory: keep finished runs of an "
                   "interrupted benchmark in --out and do the rest")
    p.add_argument("--report-only", action="store_true", help="paper, theory: rewrite the tables "
                   "and figures from the results file, without training")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--cache", default=None, help="cache folder (default: a new empty one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"cmcd: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
