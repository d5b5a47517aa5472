"""Write the stratified Fashion-MNIST subset shipped in assets/data, from the Debian package.

    apt-get install dataset-fashion-mnist     # IDX files under /usr/share/datasets/fashion-mnist
    python scripts/make_fashion_subset.py

Fashion-MNIST (Zalando Research, MIT). The subset keeps PER_CLASS items of each class, drawn with a
fixed seed from the 70,000 (train then t10k), and records each item's index in that order, so
the full set and the subset share item ids. Output: assets/data/fashion-subset.npz.
"""

import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cmcd.data.sources import read_fashion_idx  # noqa: E402

PER_CLASS = 1200
OUT = Path(__file__).resolve().parent.parent / "cmcd" / "shipped" / "data" / "fashion-subset.npz"


def main() -> None:
    images, labels = read_fashion_idx()
    rng = np.random.default_rng(20261127)
    keep = np.sort(np.concatenate([
        rng.choice(np.flatnonzero(labels == c), PER_CLASS, replace=False) for c in range(10)
    ]))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images[keep], labels=labels[keep], ids=keep.astype(np.int64))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(buffer.getvalue())
    print(f"wrote {OUT}: {len(keep)} items, {OUT.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
