"""Write the example inputs in assets/examples/, the files people would bring, from test items.

    python scripts/make_examples.py

Names are PAIR__LABEL__what.ext (tests read the expected label from the name):
- sketches: test-split sketches upscaled to 256x256 8-bit PNG, as a sketch pad would save them;
- depth maps: test-split depth as a 16-bit PNG in millimetres and as a float .npy in metres;
- spoken digits: test-voice clips (voices never heard in training) as 22.05 kHz stereo WAV.
Real recordings are not copied here: they come from the Debian package
asterisk-core-sounds-en-wav (/usr/share/asterisk/sounds/en_US_f_Allison/digits/).
"""

import sys
from pathlib import Path

import numpy as np
import soundfile
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cmcd.cli import progress_on_stderr  # noqa: E402
from cmcd.modalities import pairs  # noqa: E402
from cmcd.modalities.audio import renderer as audio  # noqa: E402
from cmcd.modalities.audio.speech import resample  # noqa: E402

OUT = ROOT / "cmcd" / "shipped" / "examples"
PER_PAIR = (0, 3, 7)  # which classes get an example


def first_of_class(split: pairs.Split, label: int) -> int:
    return int(torch.nonzero(split.labels == label)[0])


def write_sketches(pair: str) -> None:
    data = pairs.load_pair(pair)
    for label in PER_PAIR:
        index = first_of_class(data.test, label)
        big = F.interpolate(data.test.target[index: index + 1], size=(256, 256), mode="bilinear")
        name = data.class_names[label].replace("/", "-")
        Image.fromarray((big[0, 0].clamp(0, 1).numpy() * 255).astype(np.uint8)).save(
            OUT / f"{pair}__{name}__test{int(data.test.ids[index])}.png")


def write_depths(pair: str) -> None:
    data = pairs.load_pair(pair)
    for label in PER_PAIR:
        index = first_of_class(data.test, label)
        depth = data.test.target[index, 0].numpy()
        stem = f"{pair}__{data.class_names[label].replace('/', '-')}__test{int(data.test.ids[index])}"
        Image.fromarray((depth * 1000).round().astype(np.uint16)).save(OUT / f"{stem}.png")
        np.save(OUT / f"{stem}.npy", depth.astype(np.float32))


def write_speech() -> None:
    data = pairs.load_pair("digits-audio")
    for label in PER_PAIR:
        index = first_of_class(data.test, label)
        wave = audio.render_waveforms(data.test.labels[index: index + 1], data.test.ids[index: index + 1],
                                      "test", data.seed, data.gap)
        wave = resample(wave, audio.SAMPLE_RATE, 22050)[0].numpy()
        stereo = np.stack([wave, 0.8 * wave], axis=1)
        soundfile.write(OUT / f"digits-audio__{label}__testvoice{int(data.test.ids[index])}.wav",
                        stereo, 22050)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for pair in ("digits-sketch", "fashion-sketch"):
        write_sketches(pair)
    for pair in ("digits-depth", "fashion-depth"):
        write_depths(pair)
    write_speech()
    print("\n".join(sorted(path.name for path in OUT.iterdir())))


if __name__ == "__main__":
    with progress_on_stderr():
        main()
