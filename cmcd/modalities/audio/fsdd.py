"""Real people saying the digits: four speakers of the Free Spoken Digit Dataset (FSDD, CC BY-SA 4.0;
credit and licence in cmcd/shipped/data/FSDD-LICENSE.md), shipped as one file (scripts/convert_fsdd.py).

Each recording becomes a clip the way a person's file does (cmcd.modalities.audio.renderer.load_audio_file):
resampled from 8 kHz to 16 kHz, silence trimmed, peak 1, centred in one second. The audio pair mixes
them into its training pairs (class pairs, next to the synthetic voices, through the same recording
chain); a speaker left out of training is a new person to measure the student on.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import soundfile
import torch

from cmcd import paths
from cmcd.modalities.audio.speech import SAMPLE_RATE, fit_to_clip, peak_normalise, resample, trim_silence

FILE = "fsdd.npz"
BATCH = 250
CREDIT = ("Free Spoken Digit Dataset (Z. Jackson, C. Souza, J. Flaks, Y. Pan, H. Nicolas, A. Thite), "
          "CC BY-SA 4.0")


@dataclass(frozen=True)
class Recordings:
    """Every shipped recording as a clip: waveforms (N, CLIP_SAMPLES) at 16 kHz, digits and speakers."""

    waveforms: torch.Tensor
    digits: torch.Tensor
    speakers: tuple[str, ...]

    def of(self, speakers) -> torch.Tensor:
        """Row indices of the recordings by any of `speakers`."""
        known = sorted(set(self.speakers))
        unknown = set(speakers) - set(known)
        if unknown:
            raise ValueError(f"unknown FSDD speaker {sorted(unknown)[0]!r}; speakers: {', '.join(known)}")
        return torch.tensor([row for row, name in enumerate(self.speakers) if name in speakers],
                            dtype=torch.int64)


def _clips(stream: np.ndarray, starts: np.ndarray, lengths: np.ndarray, rate: int) -> list[np.ndarray]:
    """Each recording resampled (in padded batches: one resampling call per clip is slow, and
    trailing zeros are what the resampler pads a lone clip with), trimmed, levelled and centred."""
    clips = []
    for first in range(0, len(starts), BATCH):
        batch = list(zip(starts[first: first + BATCH], lengths[first: first + BATCH], strict=True))
        padded = np.zeros((len(batch), int(lengths.max())), dtype=np.float32)
        for row, (start, length) in enumerate(batch):
            padded[row, :length] = stream[start: start + length] / 32768.0
        waves = resample(torch.from_numpy(padded), rate).numpy()
        clips += [fit_to_clip(peak_normalise(trim_silence(wave[: length * SAMPLE_RATE // rate])))
                  for wave, (_, length) in zip(waves, batch, strict=True)]
    return clips


@lru_cache(maxsize=1)
def recordings() -> Recordings:
    """The shipped recordings, decoded once per process."""
    with np.load(paths.source_data(FILE), allow_pickle=False) as data:
        packed = {name: data[name] for name in data.files}
    stream, rate = soundfile.read(io.BytesIO(packed["flac"].tobytes()), dtype="int16")
    clips = _clips(stream, packed["starts"], packed["lengths"], int(rate))
    names = [str(name) for name in packed["speaker_names"]]
    return Recordings(torch.from_numpy(np.stack(clips)), torch.from_numpy(packed["digits"]),
                      tuple(names[index] for index in packed["speakers"]))
