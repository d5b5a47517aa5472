"""How each segmentation method's settings are chosen: the same validation sweep for every dense loss.

    python scripts/tune_segmentation.py [--workers N] [--resume] [--quick --out FOLDER] [--json]

is `cmcd bench segmentation-tuning` with the same flags (cmcd/bench/segmentation_tuning.py says
what it trains and how it chooses). It writes results/segmentation-tuning.json, whose "chosen"
settings `cmcd bench segmentation` runs each method with.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cmcd import cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli.main(["bench", "segmentation-tuning", *sys.argv[1:]]))
