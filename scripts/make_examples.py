"""Write the example inputs in assets/examples/, the files people would bring, from test items.

    python scripts/make_examples.py

Each is the first test item of its class whose file the pair's shipped student reads right and
sure of (the page offers them as examples of what the students do, not as hard cases), so run this
again after a student is re-shipped. Names are PAIR__LABEL__what.ext (tests read the expected label
from the name):
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

from cmcd.eval.classify import Classifier  # noqa: E402
from cmcd.modalities import pairs  # noqa: E402
from cmcd.modalities.audio import renderer as audio  # noqa: E402
from cmcd.modalities.audio.speech import resample  # noqa: E402
from cmcd.runtime import progress_on_stderr  # noqa: E402

OUT = ROOT / "cmcd" / "shipped" / "examples"
PER_PAIR = (0, 3, 7)  # which classes get an example
CANDIDATES = 50  # test items tried per class


def items_of_class(split: pairs.Split, label: int) -> list[int]:
    return torch.nonzero(split.labels == label).flatten().tolist()[:CANDIDATES]


def reads_right(model: Classifier, path: Path, label: int) -> bool:
    result = model.predict_file(path)
    return result["label"] == model.class_names[label] and not result["unsure"]


def pick(pair: str, split: pairs.Split, label: int, write) -> list[Path]:
    """The files `write(index)` makes of the first test item of `label` the student reads right."""
    model = Classifier(pair)
    for index in items_of_class(split, label):
        files = write(index)
        if all(reads_right(model, path, label) for path in files):
            return files
        for path in files:
            path.unlink()
    raise SystemExit(f"{pair}: none of the first {CANDIDATES} test items of class {label} is read right")


def stem(pair: str, data: pairs.PairData, index: int, what: str = "test") -> Path:
    label = int(data.test.labels[index])
    return OUT / f"{pair}__{data.class_names[label].replace('/', '-')}__{what}{int(data.test.ids[index])}"


def write_sketches(pair: str) -> None:
    data = pairs.load_pair(pair)

    def write(index: int) -> list[Path]:
        big = F.interpolate(data.test.target[index: index + 1], size=(256, 256), mode="bilinear")
        path = stem(pair, data, index).with_suffix(".png")
        Image.fromarray((big[0, 0].clamp(0, 1).numpy() * 255).astype(np.uint8)).save(path)
        return [path]

    for label in PER_PAIR:
        pick(pair, data.test, label, write)


def write_depths(pair: str) -> None:
    data = pairs.load_pair(pair)

    def write(index: int) -> list[Path]:
        depth = data.test.target[index, 0].numpy()
        png, npy = stem(pair, data, index).with_suffix(".png"), stem(pair, data, index).with_suffix(".npy")
        Image.fromarray((depth * 1000).round().astype(np.uint16)).save(png)
        np.save(npy, depth.astype(np.float32))
        return [png, npy]

    for label in PER_PAIR:
        pick(pair, data.test, label, write)


def write_speech() -> None:
    data = pairs.load_pair("digits-audio")

    def write(index: int) -> list[Path]:
        wave = audio.render_waveforms(data.test.labels[index: index + 1], data.test.ids[index: index + 1],
                                      "test", data.seed, data.gap)
        wave = resample(wave, audio.SAMPLE_RATE, 22050)[0].numpy()
        path = stem("digits-audio", data, index, "testvoice").with_suffix(".wav")
        soundfile.write(path, np.stack([wave, 0.8 * wave], axis=1), 22050)
        return [path]

    for label in PER_PAIR:
        pick("digits-audio", data.test, label, write)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*__*"):
        old.unlink()
    for pair in ("digits-sketch", "fashion-sketch"):
        write_sketches(pair)
    for pair in ("digits-depth", "fashion-depth"):
        write_depths(pair)
    write_speech()
    print("\n".join(sorted(path.name for path in OUT.iterdir())))


if __name__ == "__main__":
    with progress_on_stderr():
        main()
