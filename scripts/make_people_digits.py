"""Draw the digits dataset's items in people's ways of writing (cmcd.modalities.sketch.people_digits)
once, into the compressed array shipped with the package.

    python scripts/make_people_digits.py

Output: cmcd/shipped/data/people-digits.npz with `images` (2000, 28, 28) uint8 and `labels`
(2000,) uint8, class by class; item i gets id sources.FIRST_ADDED_ID + i.
"""

import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmcd import paths  # noqa: E402
from cmcd.data import cache, sources  # noqa: E402
from cmcd.modalities.sketch import people_digits  # noqa: E402


def main() -> None:
    images, labels = people_digits.make_items()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, labels=labels)
    out = paths.source_data(sources.ADDED_DIGITS_FILE)
    cache.atomic_write_bytes(out, buffer.getvalue())
    print(f"wrote {out}: {len(images)} digits, {out.stat().st_size / 1e3:.0f} kB, "
          f"per class {np.bincount(labels).tolist()}")


if __name__ == "__main__":
    main()
