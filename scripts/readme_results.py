"""Write the README's Results section from results/ and checkpoints/, so every number in it comes
from a file a named command wrote.

    python scripts/readme_results.py            # rewrite the section in README.md
    python scripts/readme_results.py --print    # print it only

The section sits between the markers <!-- results:begin --> and <!-- results:end -->;
tests/test_packaging.py checks that README.md holds exactly what this script writes.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS, CHECKPOINTS = ROOT / "results", ROOT / "checkpoints"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
PAIRS = ("digits-sketch", "digits-depth", "digits-audio", "fashion-sketch", "fashion-depth")


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def teachers() -> str:
    lines = ["| teacher | source test accuracy | source val accuracy | photos | train s (CPU) |",
             "| --- | --- | --- | --- | --- |"]
    for dataset in ("digits", "fashion"):
        for variant in ("ft", "ssl"):
            meta = _json(CHECKPOINTS / f"teacher-{dataset}-{variant}.json")
            lines.append(f"| {dataset} `{variant}` | {meta['source_test_acc']:.3f} | "
                         f"{meta['source_val_acc']:.3f} | {meta['train_items']:,} | "
                         f"{meta['train_seconds']:.0f} |")
    return "\n".join(lines)


def students() -> str:
    lines = ["| pair | shipped method | validation head accuracy of each candidate | test zero-label head | "
             "test prototype | test R@1 target→source |", "| --- | --- | --- | --- | --- | --- |"]
    for pair in PAIRS:
        meta = _json(CHECKPOINTS / f"student-{pair}.json")
        m = meta["metrics"]
        candidates = ", ".join(f"{name} {score:.3f}" for name, score in meta["candidates"].items())
        lines.append(f"| {pair} | {meta['method']} | {candidates} | {m['zero_label_acc']['head']:.3f} | "
                     f"{m['zero_label_acc']['prototype']:.3f} | "
                     f"{m['retrieval']['target_to_source']['r1']:.3f} |")
    return "\n".join(lines)


def speed() -> str:
    s = _json(RESULTS / "bench-speed.json")
    return (f"Default `cmcd distill --pair {s['pair']}` ({s['method']}, width {s['width']}, "
            f"{s['epochs']} epochs × {s['n_pairs']:,} pairs, {s['device']}, {s['torch_threads']} "
            f"threads): {s['cli_distill_wall_s']:.1f} s wall in a new process, start-up and "
            f"evaluation included; {s['distill_pairs_per_s']:,.0f} pairs/s against "
            f"{s['pure_train_samples_per_s']:,.0f} samples/s of pure forward+backward on identical "
            f"batches (ratio {s['ratio']:.2f}, both in a warmed-up process).")


def data() -> str:
    d = _json(RESULTS / "bench-data.json")
    warm = max(d["warm_load_s"].values())
    return (f"Cold build of all five pairs from an empty cache: {d['cold_build_total_s']:.1f} s "
            f"on {d['cpu_count']} cores (peak {d['peak_rss_mb']['build']:,.0f} MB); warm load "
            f"of any pair at most {warm:.2f} s.")


def app() -> str:
    a = _json(RESULTS / "bench-app.json")
    latency = "; ".join(f"{pair} p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms"
                        for pair, row in a["classify"].items())
    return (f"`python app.py` serves its page after {a['startup_s']:.1f} s; classify latency of "
            f"the app's handlers on the shipped examples ({a['cpu_count']} cores): {latency}.")


def section() -> str:
    methods = (RESULTS / "methods.md").read_text().strip()
    tuning = _json(RESULTS / "tuning.json")
    return "\n".join([
        BEGIN,
        "## Results",
        "",
        "All on the CPU of a 2-core machine, seed 0, test split unless said otherwise. "
        "One seed: differences of a point or two are within run-to-run spread.",
        "",
        "**Teachers** (`cmcd pretrain`, see `checkpoints/README.md`; accuracy of the linear head "
        "on held-out source photos):",
        "",
        teachers(),
        "",
        f"**Methods at default settings** (`python scripts/method_table.py`, writes "
        f"`results/methods.md`; `ft` teacher, all pairs, {tuning['epochs']} epochs, width 16; "
        "temperatures, λ and augmentation chosen on the validation split by "
        "`python scripts/tune_on_validation.py`, see `results/tuning.json`). Retrieval R@1 is "
        "instance matching among 1,000 test items for sketch and depth, class matching for audio "
        "(class pairs). TV is the classifier two-sample estimate; it saturates near 1 for "
        "every method here, so it does not yet separate them.",
        "",
        methods,
        "",
        "**Shipped students** (`python scripts/ship_students.py --epochs 12 --width 32`; the CMCD "
        "variant with the best validation score ships as `checkpoints/student-PAIR`):",
        "",
        students(),
        "",
        f"**Speed** (`cmcd bench speed --json > results/bench-speed.json`): {speed()}",
        "",
        f"**Data** (`cmcd bench data --json > results/bench-data.json`): {data()}",
        "",
        f"**App** (`cmcd bench app --json > results/bench-app.json`): {app()}",
        END,
    ])


def main() -> None:
    text = section()
    if "--print" in sys.argv:
        print(text)
        return
    readme = (ROOT / "README.md").read_text()
    if BEGIN in readme:
        head, rest = readme.split(BEGIN, 1)
        readme = head + text + rest.split(END, 1)[1]
    else:
        readme = readme.replace("\n## The data\n", f"\n{text}\n\n## The data\n", 1)
    (ROOT / "README.md").write_text(readme)


if __name__ == "__main__":
    main()
