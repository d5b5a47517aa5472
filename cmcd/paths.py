"""Every place CMCD reads or writes files, in one module.

Shipped files (source images, teachers and default students, example inputs) are package data
under `cmcd/shipped/`, found through `importlib.resources`, so an installed wheel works from any
directory. Environment variables override where that makes sense:

- CMCD_CHECKPOINTS: teachers and default students (default: the shipped ones);
- CMCD_CACHE: built data, teacher embeddings, map coordinates (default: ~/.cache/cmcd);
- CMCD_RESULTS: benchmark results the app reads (default: results/ of the checkout, else ./results);
- CMCD_STUDENTS: where `cmcd distill --out` and the app save trained students (default:
  checkpoints/ of the checkout, else ./checkpoints).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

# 2: flite/festival voices in the speech bank, people-like sketches; 3: digits in people's ways of
# writing; 4: real people's recordings (FSDD) in a quarter of the spoken digits' training pairs
DATA_VERSION = "4"


def shipped(*parts: str) -> Path:
    """A file or folder shipped inside the package (cmcd/shipped/...)."""
    return Path(str(resources.files("cmcd").joinpath("shipped", *parts)))


def source_data(name: str) -> Path:
    """A shipped source-image archive, such as mnist.npz."""
    return shipped("data", name)


def examples_dir() -> Path:
    """Example inputs for classification (test items, never seen in training)."""
    return shipped("examples")


def checkpoint_root() -> Path:
    """Where teachers and default students are read: $CMCD_CHECKPOINTS, else the shipped folder."""
    return Path(os.environ.get("CMCD_CHECKPOINTS") or shipped("checkpoints"))


def cache_dir() -> Path:
    """The cache folder: $CMCD_CACHE, else ~/.cache/cmcd (one sub-folder per data version)."""
    root = os.environ.get("CMCD_CACHE") or Path.home() / ".cache" / "cmcd"
    path = Path(root) / f"data-v{DATA_VERSION}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkout_root() -> Path | None:
    """The source checkout the package runs from (app.py, results/), or None for an installed wheel."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").exists() and (root / "app.py").exists() else None


def results_dir() -> Path:
    """Benchmark results: $CMCD_RESULTS, else results/ of the checkout, else ./results."""
    if os.environ.get("CMCD_RESULTS"):
        return Path(os.environ["CMCD_RESULTS"])
    root = checkout_root()
    return (root or Path.cwd()) / "results"


def students_dir() -> Path:
    """Where trained students are saved by default (`cmcd distill --out`, the app's runs):
    $CMCD_STUDENTS, else checkpoints/ of the checkout, else ./checkpoints. The shipped teachers and
    students are not here: they travel inside the package (checkpoint_root())."""
    if os.environ.get("CMCD_STUDENTS"):
        return Path(os.environ["CMCD_STUDENTS"])
    return (checkout_root() or Path.cwd()) / "checkpoints"
