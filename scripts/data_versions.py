"""Did the people-like data (version 2) cost synthetic accuracy? The students shipped on data
version 1 and those shipped now, each scored on version 1's and version 2's test split.

The test split changed with the data (people-like drawings; spoken digits by speakers never heard
in training), so a student's own test figure before and after mixes two changes: the student and
the test. Here every student meets both test sets, with the same (unchanged) teachers: zero-label
head accuracy, and the new − old difference paired over the same test items, with a 95 % interval.
Version 1's code, test renders and students come from the git history (OLD_COMMIT, the last
commit on data version 1), so this needs a clone with history.

    python scripts/data_versions.py [--old-commit 0fa4d76] [--out results]

Writes OUT/data_versions.json and prints a table.
"""

import argparse
import math
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from cmcd.data.cache import atomic_write_json  # noqa: E402
from cmcd.data.inputs import InputError  # noqa: E402
from cmcd.eval.classify import student_stem  # noqa: E402
from cmcd.eval.metrics import zero_label_predictions  # noqa: E402
from cmcd.modalities import pairs  # noqa: E402
from cmcd.models.checkpoints import load_student  # noqa: E402
from cmcd.models.embed import embed  # noqa: E402
from cmcd.models.teacher import load_teacher  # noqa: E402

OLD_COMMIT = "0fa4d76"  # parent of bfbaa11, which made the speech bank (and the data) version 2
CHANGED_PAIRS = ("digits-sketch", "fashion-sketch", "digits-audio")  # depth is the same in both
Z_95 = 1.959964

# Runs inside version 1's code: its test split of each pair, rendered as its pairs stored them.
RENDER_OLD_TESTS = """
import sys
from safetensors.torch import save_file
from cmcd.modalities import pairs
tensors = {}
for name in sys.argv[2:]:
    spec = pairs.get_spec(name)
    source = pairs.source_images(spec.dataset)
    rows = pairs.split_indices(source)["test"]
    tensors[name + "/target"] = pairs.render_target(spec, source, rows, "test", 0, spec.default_gap)
    tensors[name + "/labels"] = pairs.torch.from_numpy(source.labels[rows]).long()
save_file({key: value.contiguous() for key, value in tensors.items()}, sys.argv[1])
"""


def extract_old_tree(commit: str, folder: Path) -> Path:
    """Version 1's `cmcd` package (code, shipped data and students) from the git history."""
    archive = subprocess.run(["git", "archive", commit, "cmcd"], cwd=ROOT, capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {commit} failed ({archive.stderr.decode().strip()}): this "
                         "script needs a clone with its history")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def render_old_tests(tree: Path, cache: Path, commit: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    out = cache / "old-tests.safetensors"
    env = {**os.environ, "PYTHONPATH": str(tree), "CMCD_CACHE": str(cache)}
    print(f"rendering version 1's test splits with {commit}'s code ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-c", RENDER_OLD_TESTS, str(out), *CHANGED_PAIRS], env=env,
                   cwd=cache, check=True)
    found = load_file(str(out))
    return {name: (found[f"{name}/target"], found[f"{name}/labels"]) for name in CHANGED_PAIRS}


def correct(stem: Path, pair: str, target: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per test item, whether the student's zero-label head prediction is right."""
    student, metadata = load_student(stem)
    teacher = load_teacher(pairs.get_spec(pair).dataset, metadata.get("teacher", "ft"))
    return (zero_label_predictions(embed(student, target), teacher.head) == labels).float()


def paired(new: torch.Tensor, old: torch.Tensor) -> dict:
    difference = new - old
    half = Z_95 * float(difference.std()) / math.sqrt(len(difference))
    mean = float(difference.mean())
    return {"old_student": round(float(old.mean()), 4), "new_student": round(float(new.mean()), 4),
            "difference": round(mean, 4), "ci_low": round(mean - half, 4), "ci_high": round(mean + half, 4),
            "n": len(difference)}


def through_reader(pair: str, target: torch.Tensor, labels: torch.Tensor):
    """Sketches read as the app reads a drawing (cropped to the ink, redrawn with one pen), which
    version 2's renders already are and version 1's were not; None for other modalities. Drawings
    the reader refuses (blank) are left out."""
    modality = pairs.get_spec(pair).target
    if modality.read_drawing is None:
        return None
    read, kept = [], []
    for row, sample in enumerate(target):
        try:
            read.append(modality.read_drawing_of(sample[0].float().numpy()))
            kept.append(row)
        except InputError:
            continue
    return torch.stack(read), labels[kept]


def compare(tree: Path, old_tests: dict) -> list[dict]:
    rows = []
    for pair in CHANGED_PAIRS:
        old_stem = tree / "cmcd" / "shipped" / "checkpoints" / f"student-{pair}"
        data = pairs.load_pair(pair)
        tests = {"version 1": old_tests[pair], "version 2": (data.test.target, data.test.labels)}
        read = through_reader(pair, *old_tests[pair])
        if read is not None:
            tests["version 1, read as the app reads a drawing"] = read
        for test_set, (target, labels) in tests.items():
            found = paired(correct(student_stem(pair), pair, target, labels),
                           correct(old_stem, pair, target, labels))
            rows.append({"pair": pair, "test_set": test_set, **found})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| pair | test split | student shipped on data v1 | student shipped now | now − v1 (95 % CI) |",
             "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['pair']} | {r['test_set']} | {r['old_student']:.3f} | {r['new_student']:.3f} | "
                     f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-commit", default=OLD_COMMIT)
    parser.add_argument("--out", default="results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cmcd-v1-") as folder:
        tree = extract_old_tree(args.old_commit, Path(folder) / "tree")
        (Path(folder) / "cache").mkdir()
        rows = compare(tree, render_old_tests(tree, Path(folder) / "cache", args.old_commit))
    report = {"command": "python scripts/data_versions.py", "old_commit": args.old_commit,
              "measure": "zero-label head accuracy; difference paired over the same test items",
              "rows": rows}
    atomic_write_json(Path(args.out) / "data_versions.json", report)
    print(table(rows))


if __name__ == "__main__":
    main()
