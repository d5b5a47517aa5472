"""Spoken digits from Debian's recorded-voice engines, flite and festival, and speaker warps.

espeak-ng's formant voices are far from human speech; flite and festival concatenate or model
recordings of real people. One human speaker may stand behind several engine voices (flite's kal,
kal16 and festival's kal_diphone are all one man), so a SPEAKER, not an engine voice, belongs to one
split. Each speaker is spoken at several tempos and pitches and then warped (vocal-tract length and
pitch together, by a resampling pitch shift) by factors that belong to its split alone: the test
split's voices (engine + voice + warp family) are never heard in training.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

DEBIAN_PACKAGES = ("flite", "festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts")

# (engine, engine voice, human speaker): the speaker decides the split.
ENGINE_VOICES = (
    ("flite", "kal", "kal"), ("flite", "kal16", "kal"), ("festival", "kal_diphone", "kal"),
    ("flite", "slt", "slt"), ("festival", "cmu_us_slt_arctic_hts", "slt"),
    ("flite", "rms", "rms"),
    ("flite", "awb", "awb"), ("festival", "ked_diphone", "ked"),
)
SPEAKER_SPLITS = {"train": ("kal", "slt"), "val": ("rms",), "test": ("awb", "ked")}
# Warp factors (formants and pitch scaled together); each split has its own, so a warped voice is
# a speaker of that split only. 1.0 (the recorded speaker as is) is a training voice.
WARPS = {
    "train": (0.82, 0.88, 0.94, 1.0, 1.07, 1.14, 1.22),
    "val": (0.91, 1.1),
    "test": (0.85, 0.97, 1.18),
}
TEMPOS = (0.8, 1.0, 1.3)  # duration stretch: slow, as recorded, slower still
FLITE_PITCHES = (None, 0.8, 1.3)  # flite's mean f0 scaled by this (None: the voice's own)
FLITE_MEAN_F0 = {"kal": 100, "kal16": 100, "slt": 170, "rms": 100, "awb": 100}
N_FFT, HOP = 512, 128
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def split_of(speaker: str) -> str:
    return next(split for split, speakers in SPEAKER_SPLITS.items() if speaker in speakers)


class SpeechEnginesMissing(RuntimeError):
    """The Debian speech engines are not installed; the message names the packages."""


def check_installed() -> None:
    """SpeechEnginesMissing naming the Debian packages when flite or festival's voices are missing."""
    voices = Path("/usr/share/festival/voices")
    missing = shutil.which("flite") is None or shutil.which("festival") is None or not all(
        (voices / folder).is_dir()
        for folder in ("english/kal_diphone", "english/ked_diphone", "us/cmu_us_slt_arctic_hts")
    )
    if missing:
        raise SpeechEnginesMissing(
            "the spoken-digit bank needs the Debian speech engines flite and festival with their "
            f"voices: apt-get install {' '.join(DEBIAN_PACKAGES)} (a Space needs them in its "
            "packages.txt; .ci/run and scripts/dev.py install them when run as root)"
        )


def _read(path: Path) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return samples.mean(axis=1), rate


def _flite(voice: str, tempo: float, pitch: float | None, folder: Path) -> list[tuple]:
    """The ten digits from one flite voice: [(samples, rate)], one process per word (flite starts
    in milliseconds; festival does not)."""
    spoken = []
    for digit, word in enumerate(DIGIT_WORDS):
        out = folder / f"flite-{voice}-{tempo}-{pitch}-{digit}.wav"
        command = ["flite", "-voice", voice, "-t", word, "-o", str(out),
                   "--setf", f"duration_stretch={tempo}"]
        if pitch is not None:
            command += ["--setf", f"int_f0_target_mean={FLITE_MEAN_F0[voice] * pitch:.0f}"]
        subprocess.run(command, check=True, capture_output=True)
        spoken.append(_read(out))
    return spoken


def _festival(voice: str, folder: Path) -> dict[float, list[tuple]]:
    """Every tempo of the ten digits from one festival voice, in one festival process."""
    lines = [f"(voice_{voice})"]
    for tempo in TEMPOS:
        lines.append(f"(Parameter.set 'Duration_Stretch {tempo})")
        lines += [f'(utt.save.wave (utt.synth (Utterance Text "{word}")) '
                  f'"{folder}/festival-{voice}-{tempo}-{digit}.wav" \'riff)'
                  for digit, word in enumerate(DIGIT_WORDS)]
    script = folder / f"{voice}.scm"
    script.write_text("\n".join(lines) + "\n")
    subprocess.run(["festival", "-b", str(script)], check=True, capture_output=True)
    return {tempo: [_read(folder / f"festival-{voice}-{tempo}-{digit}.wav")
                    for digit in range(len(DIGIT_WORDS))] for tempo in TEMPOS}


def _jobs(folder: Path) -> list:
    """One callable per engine run, returning [(voice name, digit, samples, rate)]."""
    jobs = []
    for engine, voice, _ in ENGINE_VOICES:
        if engine == "festival":
            def run(voice=voice):
                return [(f"festival:{voice}:t{tempo}", digit, *spoken)
                        for tempo, clips in _festival(voice, folder).items()
                        for digit, spoken in enumerate(clips)]
            jobs.append(run)
            continue
        for tempo in TEMPOS:
            for pitch in FLITE_PITCHES:
                def run(voice=voice, tempo=tempo, pitch=pitch):
                    return [(f"flite:{voice}:t{tempo}:p{pitch}", digit, *spoken)
                            for digit, spoken in enumerate(_flite(voice, tempo, pitch, folder))]
                jobs.append(run)
    return jobs


def synthesize_engines(workers: int = 4) -> list[tuple[str, str, int, np.ndarray, int]]:
    """Every digit from every engine voice, tempo and pitch, unwarped:
    [(speaker, voice name, digit, samples, rate)], in a fixed order."""
    check_installed()
    speaker_of = {voice: speaker for _, voice, speaker in ENGINE_VOICES}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda job: job(), _jobs(Path(tmp))))
    return [(speaker_of[name.split(":")[1]], name, digit, samples, rate)
            for clips in results for name, digit, samples, rate in clips]


def warp(waves: torch.Tensor, factor: float) -> torch.Tensor:
    """Scale every frequency of a batch of waves (N, T) by `factor` (to the percent) at about the
    same duration: a shorter or longer vocal tract with a higher or lower voice. A phase vocoder
    stretches the waves by `factor`, then resampling plays them `factor` times faster."""
    percent = round(100 * factor)
    if percent == 100:
        return waves
    window = torch.hann_window(N_FFT)
    with torch.no_grad():
        spectra = torch.stft(waves, N_FFT, HOP, window=window, return_complex=True)
        phase_advance = torch.linspace(0, math.pi * HOP, spectra.shape[-2])[..., None]
        stretched = AF.phase_vocoder(spectra, 100 / percent, phase_advance)
        length = round(waves.shape[-1] * percent / 100)
        slowed = torch.istft(stretched, N_FFT, HOP, window=window, length=length)
        return AF.resample(slowed, percent, 100)
