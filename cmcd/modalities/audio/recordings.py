"""Recordings as browsers and phones save them, converted to WAV before anything else reads them.

A browser's microphone gives WebM or Ogg with Opus (Chrome, Firefox) or MP4 with AAC (Safari);
people upload MP3 and M4A too. libsndfile (soundfile) reads WAV, FLAC, Ogg and MP3 itself; anything
else is decoded with PyAV (the `av` package, which ships its own FFmpeg), mixed down to mono and
written as a WAV of the same name in a temporary folder, so later errors still name the file the
person gave.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile

from cmcd.data.inputs import InputError

FORMATS = "WAV, FLAC, OGG, MP3, M4A or WebM"


def soundfile_reads(path: Path) -> bool:
    try:
        soundfile.info(str(path))
    except (soundfile.SoundFileError, RuntimeError):
        return False
    return True


def _frames(path: Path, max_seconds: float) -> tuple[list[np.ndarray], int]:
    """The first audio track's samples as mono float32 pieces, and its rate; InputError when the
    file holds no audio or more than `max_seconds` of it."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise InputError(f"{path.name}: the file holds no sound track")
        stream = container.streams.audio[0]
        rate = stream.rate or stream.codec_context.sample_rate
        mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
        pieces, total = [], 0
        for frame in container.decode(stream):
            for converted in mono.resample(frame):
                pieces.append(converted.to_ndarray().reshape(-1))
                total += pieces[-1].size
            if total > max_seconds * rate:
                raise InputError(f"{path.name}: the recording is longer than {max_seconds:g} s; "
                                 f"at most {max_seconds:g} s please")
        pieces += [converted.to_ndarray().reshape(-1) for converted in mono.resample(None)]
    return pieces, rate


def decode(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate, decoded with PyAV, or InputError saying why not."""
    try:
        import av
    except ImportError:
        raise InputError(f"{path.name}: reading this kind of recording needs the Python package "
                         f"`av` (pip install av); WAV, FLAC and OGG need nothing more") from None
    try:
        pieces, rate = _frames(path, max_seconds)
    except InputError:
        raise
    except (av.FFmpegError, ValueError, IndexError) as error:
        raise InputError(f"{path.name}: not a readable {FORMATS} recording "
                         f"({type(error).__name__})") from None
    samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if samples.size == 0:
        raise InputError(f"{path.name}: the file holds no audio samples")
    return samples, int(rate)


@contextlib.contextmanager
def as_wav(path: Path, max_seconds: float) -> Iterator[Path]:
    """`path` itself when soundfile reads it; else a WAV of the same name, decoded with PyAV,
    that lasts as long as the `with` block."""
    path = Path(path)
    if soundfile_reads(path):
        yield path
        return
    samples, rate = decode(path, max_seconds)
    with tempfile.TemporaryDirectory(prefix="cmcd-recording-") as folder:
        wav = Path(folder) / path.name  # WAV inside; soundfile reads by content, not by name
        soundfile.write(str(wav), samples, rate, format="WAV", subtype="FLOAT")
        yield wav
