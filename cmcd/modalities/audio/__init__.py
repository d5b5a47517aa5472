"""Spoken digits: log-mel spectrograms (1x40x40 float) of the class name spoken by synthetic voices
and, in the training pairs, by real people (FSDD recordings, cmcd.modalities.audio.fsdd), all made
to sound recorded (cmcd.modalities.audio.renderer). Audio pairs are class pairs, as in AV-MNIST:
each image goes with a clip of the same digit, and each split has voices of its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from cmcd.data import person_files
from cmcd.data.inputs import InputError, check_file
from cmcd.modalities import augment as augmentations
from cmcd.modalities.audio import junk, recordings
from cmcd.modalities.base import Modality, Pairing, RenderRequest, TryIt
from cmcd.modalities.encoders import ImageEncoder, conv_bn_relu

# Clips of each split come from disjoint voices.
VOICES_OF_SPLIT = {"pairs": "train", "val": "val", "test": "test"}
# The real people whose recordings ship with the package (cmcd/shipped/data/fsdd.npz).
REAL_SPEAKERS = ("jackson", "lucas", "nicolas", "yweweler")
# The share of training pairs spoken by real people (FSDD): the one scripts/real_speakers.py chose
# on speakers held out in turn (results/speakers.json, "choice"; a test keeps the two in step).
REAL_SHARE = 0.5
# digits-audio-recorded (every split real recordings): two speakers to learn from, one to choose
# on, one to be tested on.
RECORDED_SPLITS = {"pairs": ("jackson", "lucas"), "val": ("nicolas",), "test": ("yweweler",)}


class AudioInput(nn.Module):
    """Log-mels are already standardised by the renderer; passed through as float."""

    out_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


class AudioEncoder(ImageEncoder):
    """Log-mel spectrograms (N, 1, 40 mel bins, 40 frames) -> (N, embed_dim).

    Same residual trunk as the image encoder; only the stem differs. A spectrogram's axes mean
    different things, so the stem first convolves along frequency (5x1: a local spectral shape
    such as a formant) and then along time (1x5: how that shape moves), as in the separable
    frequency/time front ends common for keyword spotting, before the square 3x3 blocks. Each
    halves its own axis, like the image stem's stride 2: 40x40 -> 20x20."""

    def make_stem(self, in_channels: int, width: int) -> nn.Module:
        return nn.Sequential(
            conv_bn_relu(in_channels, width, (5, 1), stride=(2, 1)),
            conv_bn_relu(width, width, (1, 5), stride=(1, 2)),
        )


def real_voices(request: RenderRequest):
    """The real people in a request's clips: options "real_share" (of the training pairs) and
    "real_speakers" (default: every shipped FSDD speaker); validation and test are synthetic.
    Option "recorded": every clip of every split is real, by the split's "recorded_splits" speakers."""
    from cmcd.modalities.audio import renderer as audio

    if request.options.get("recorded"):
        return audio.RealVoices(1.0, tuple(request.options["recorded_splits"][request.split]))
    share = float(request.options.get("real_share", 0.0))
    if request.split != "pairs" or share <= 0:
        return None
    return audio.RealVoices(share, tuple(request.options.get("real_speakers", REAL_SPEAKERS)))


def render(request: RenderRequest) -> torch.Tensor:
    from cmcd.modalities.audio import renderer as audio  # torchaudio and the voice bank load on first use

    return audio.render(request.labels, request.ids, VOICES_OF_SPLIT[request.split],
                        request.seed, request.gap, tuple(request.options.get("without", ())),
                        real_voices(request))


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Half the clips trimmed as a file's reader trims them, then shifted and masked (SpecAugment).

    A person's file, and every real recording the student is measured on, is read trimmed and
    centred between zeros (renderer.load_audio_file), and FSDD's own recordings are cut tightly,
    often into a word's first and last sounds; the training clips instead carry the recording
    chain's noise to their edges. Trimming at a random threshold shows the student both (on the
    speakers held out in turn, cmcd.bench.speakers, it helped most where a tight cut had left
    "six" sounding like "eight")."""
    from cmcd.modalities.audio import renderer as audio

    x = augmentations.trim_quiet_edges(x, generator, audio.frame_decibels(x), audio.SILENT_FEATURE)
    return augmentations.spec_augment(augmentations.time_shift(x, generator), generator)


def load_file(path: Path) -> torch.Tensor:
    """WAV, FLAC, OGG, MP3, M4A or WebM at any sample rate, mono or stereo (converted to WAV by
    cmcd.modalities.audio.recordings, then resampled, mixed down, silence trimmed; see
    cmcd.modalities.audio.renderer.load_audio_file)."""
    from cmcd.modalities.audio import renderer as audio

    path = check_file(path)
    try:
        with recordings.as_wav(path, audio.MAX_FILE_SECONDS) as wav:
            return torch.as_tensor(audio.features_from_file(wav)).float()
    except ValueError as error:  # its message already names the file
        raise InputError(str(error)) from None


def write_files(request: RenderRequest, folder: Path) -> list[Path]:
    """Each item's recording (before log-mel features) as a 16-bit WAV."""
    from cmcd.modalities.audio import renderer as audio

    waves = audio.render_waveforms(request.labels, request.ids, VOICES_OF_SPLIT[request.split],
                                   request.seed, request.gap, real=real_voices(request))
    return [person_files.write_sound(wave.numpy(), audio.SAMPLE_RATE, Path(folder) / f"item-{item_id}")
            for item_id, wave in zip(request.ids.tolist(), waves, strict=True)]


def to_picture(sample: torch.Tensor) -> np.ndarray:
    """Low frequencies at the bottom, scaled to the spectrogram's own range."""
    image = sample[0].float().flip(0)
    image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-6)
    grey = (image.clamp(0, 1) * 255).round().byte()
    return grey[..., None].repeat(1, 1, 3).numpy()


def real_samples():
    """Asterisk's "Allison", a real person, saying the digits 0-9, when Debian's
    asterisk-core-sounds-en-wav is installed."""
    from cmcd.modalities.audio import renderer as audio

    return audio.real_recordings()


AUDIO = Modality(
    name="audio", render=render, adapter=AudioInput, encoder=AudioEncoder,
    to_picture=to_picture, load_file=load_file, augment=augment,
    gap_meaning="noise level (SNR 30 dB at 0 down to 0 dB at 1), reverberation, telephone band",
    try_it=TryIt("Say or upload a digit", "recorder",
                 f"Spoken digit ({recordings.FORMATS}, up to 10 s)"),
    real_samples=real_samples,
    write_files=write_files, junk=junk.SOUNDS,
    pairs=(Pairing("digits", "class", ingredients=("recorded-voices", "warps", "recording-chain"),
                   render_options={"real_share": REAL_SHARE, "real_speakers": REAL_SPEAKERS,
                                   "recorded_splits": RECORDED_SPLITS}),))
