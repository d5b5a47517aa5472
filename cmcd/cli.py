"""The `cmcd` command line. With --json, exactly one JSON object goes to stdout; progress and
errors go to stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cmcd import pairs


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
    from cmcd.contact_sheet import write_contact_sheet

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


def cmd_bench(args) -> int:
    if args.what == "data":
        from cmcd import bench_data

        report = bench_data.run(cache_root=args.cache)
        if args.json:
            _print_json(report)
        else:
            print(bench_data.format_report(report))
        return 0
    raise ValueError(f"unknown benchmark {args.what!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmcd", description="Cross-modality contrastive "
                                     "distillation: rich-modality teachers, poor-modality students.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pairs", help="list the registered modality pairs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_pairs)

    p = sub.add_parser("data", help="build (or load) a pair's data; optionally write contact sheets")
    p.add_argument("--pair", default="all", help="a pair name or 'all' (default)")
    p.add_argument("--gap", type=float, default=None, help="modality gap 0..1 (default: the pair's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sheet-dir", default=None, help="write PAIR.png contact sheets here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_data)

    p = sub.add_parser("bench", help="measure: data (build and load times, memory)")
    p.add_argument("what", choices=["data"])
    p.add_argument("--cache", default=None, help="cache folder (default: a new empty one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:
        print(f"cmcd: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
