"""Write cmcd/shipped/app/test-items.safetensors: for each pair with a shipped student, the test
items the app shows, their teacher and student embeddings and the alignment map's UMAP and PCA
coordinates, so that a restarted Space answers without building any pair.

Run it after ship_students.py (a pair whose student changed is built again by the app until this
runs):  python scripts/ship_app_items.py [--pairs PAIR ...]
(--pairs: build only these pairs' items, keep the others' shipped items as they are)
"""

from __future__ import annotations

import argparse
import sys
import time

from cmcd.app import shipped
from cmcd.eval.classify import has_shipped_student
from cmcd.modalities import pairs
from cmcd.runtime import progress_on_stderr
from cmcd.viz import maps


def items_with_maps(pair: str) -> dict:
    items = shipped.build_test_items(pair)
    items["coordinates"] = {projection: maps.coordinates(items["teacher"], items["student"], projection)
                            for projection in shipped.MAP_PROJECTIONS}
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", choices=list(pairs.PAIRS), help="build only these pairs' items")
    chosen = parser.parse_args().pairs
    started = time.perf_counter()
    with_students = [pair for pair in pairs.PAIRS
                     if has_shipped_student(pair)]
    kept = {pair: shipped.read_shipped_items(pair) for pair in with_students if chosen and pair not in chosen}
    items_of = {pair: kept.get(pair) or items_with_maps(pair) for pair in with_students}
    path = shipped.items_file()
    shipped.write_items_file(path, items_of)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {len(items_of)} pairs, "
          f"{shipped.APP_ITEMS} items each) in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    with progress_on_stderr():
        sys.exit(main())
