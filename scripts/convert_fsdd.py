"""Pack four speakers of the Free Spoken Digit Dataset (CC BY-SA 4.0) into the file shipped in
cmcd/shipped/data/fsdd.npz.

    python scripts/convert_fsdd.py ../shared/data/fsdd/recordings

The folder holds `{digit}_{speaker}_{index}.wav` (8 kHz, mono, 16-bit). Every recording is kept
sample for sample: the recordings are concatenated in (speaker, digit, index) order into one
lossless FLAC stream (about half the size of the WAVs) whose bytes are stored in the npz with
`starts` and `lengths` (samples), `digits`, `speakers` (index into `speaker_names`) and `indices`.
cmcd.modalities.audio.fsdd reads it back; the credit and licence are in FSDD-LICENSE.md beside it.
"""

import io
import re
import sys
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmcd.data.cache import atomic_write_bytes  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "cmcd" / "shipped" / "data" / "fsdd.npz"
SAMPLE_RATE = 8000
NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def read_recordings(folder: Path) -> list[tuple[str, int, int, np.ndarray]]:
    """(speaker, digit, index, int16 samples) of every recording, sorted."""
    found = []
    for path in folder.glob("*.wav"):
        match = NAME.match(path.name)
        if match is None:
            sys.exit(f"{path.name}: not a {{digit}}_{{speaker}}_{{index}}.wav recording")
        samples, rate = soundfile.read(str(path), dtype="int16")
        if rate != SAMPLE_RATE or samples.ndim != 1:
            sys.exit(f"{path.name}: expected mono {SAMPLE_RATE} Hz, got {rate} Hz, shape {samples.shape}")
        found.append((match[2], int(match[1]), int(match[3]), samples))
    return sorted(found, key=lambda row: row[:3])


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    recordings = read_recordings(Path(sys.argv[1]))
    names = sorted({speaker for speaker, *_ in recordings})
    lengths = np.array([len(samples) for *_, samples in recordings], dtype=np.int64)
    flac = io.BytesIO()
    soundfile.write(flac, np.concatenate([samples for *_, samples in recordings]), SAMPLE_RATE,
                    format="FLAC", subtype="PCM_16")
    buffer = io.BytesIO()
    np.savez(buffer, flac=np.frombuffer(flac.getvalue(), dtype=np.uint8),
             starts=np.cumsum(lengths) - lengths, lengths=lengths,
             digits=np.array([digit for _, digit, *_ in recordings], dtype=np.int64),
             speakers=np.array([names.index(speaker) for speaker, *_ in recordings], dtype=np.int64),
             indices=np.array([index for _, _, index, _ in recordings], dtype=np.int64),
             speaker_names=np.array(names), sample_rate=np.array(SAMPLE_RATE))
    atomic_write_bytes(OUT, buffer.getvalue())
    print(f"wrote {OUT}: {len(recordings)} recordings of {', '.join(names)}, "
          f"{OUT.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
