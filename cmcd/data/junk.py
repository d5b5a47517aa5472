"""Inputs that show no class, the way people give them: scribbles, boxes and letters on a sketch pad,
depth maps of blobs and ramps, recordings of noise, mains hum, clicks and beeps.

A student answers every input with some class; these are what its "not sure" flag must catch.
Each modality lists its kinds (`Modality.junk`, a `JunkKinds`), each kind a maker that draws one
random input; `write_files` writes them as the files a person would upload, so they reach the
student through the modality's own file reader. Some kinds (a blank canvas, a depth map with no
readings, silence) are meant to be refused by that reader with a clear error.
Each modality's kinds live in its own folder (`cmcd/modalities/NAME/junk.py`); which items come
out depends only on (seed, kind, index). Some kinds are `held_out`: calibration never sees them, so
`cmcd bench inputs` reports on junk unlike any it was fitted on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Maker = Callable[[np.random.Generator], object]


@dataclass(frozen=True)
class JunkKinds:
    """A modality's kinds of junk and how one is written as a file (path without its suffix)."""

    makers: Mapping[str, Maker]
    write: Callable[[object, Path], Path]
    held_out: tuple[str, ...] = ()  # kinds never calibrated on, so the bench measures unseen junk
    # kinds whose exact samples also depend on what the process made before (the same item, not
    # the same bytes): speech from espeak-ng, whose pitch flutter carries over
    unrepeatable: tuple[str, ...] = ()

    @property
    def calibration_kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in self.makers if kind not in self.held_out)

    def write_files(self, folder: Path, seed: int, per_kind: int,
                    kinds: tuple[str, ...] | None = None) -> list[tuple[str, Path]]:
        """`per_kind` files of every kind (or of `kinds`) in `folder`: [(kind, path)], kind by kind."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for number, (kind, make) in enumerate(self.makers.items()):
            if kinds is not None and kind not in kinds:
                continue
            for index in range(per_kind):
                rng = np.random.default_rng([seed, number, index])
                stem = folder / f"junk-{kind.replace(' ', '-')}-{index}"
                written.append((kind, self.write(make(rng), stem)))
        return written
