"""The Try it tab: a visitor's drawing, upload or recording, classified by the pair's shipped
student, with the nearest test photos."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from cmcd import paths
from cmcd.app.shipped import classifier, item_photos, picture, shipped_test_embeddings
from cmcd.data import pairs
from cmcd.data.inputs import InputError, drawing_array
from cmcd.eval.metrics import nearest_neighbours
from cmcd.eval.records import ZERO_LABEL_HEAD
from cmcd.modalities import Modality
from cmcd.models.embed import embed
from cmcd.paths import checkpoint_root



def drawing_to_grey(image: np.ndarray) -> np.ndarray:
    """A sketch-pad image (H, W), (H, W, 3) or (H, W, 4) -> greyscale in [0, 1] on white paper
    (transparent pixels are paper)."""
    image = drawing_array(image).astype(np.float32)
    if image.max() > 1.0:
        image = image / 255.0
    if image.ndim == 2:
        return image
    rgb, alpha = image[..., :3], (image[..., 3:4] if image.shape[-1] == 4 else 1.0)
    return (rgb * alpha + (1.0 - alpha)).mean(axis=-1)


def _drawing_sample(pair: str, editor_value):
    image = editor_value.get("composite") if isinstance(editor_value, dict) else editor_value
    if image is None:
        raise InputError("draw something on the sketch pad first")
    return pairs.get_spec(pair).target.read_drawing_of(drawing_to_grey(image))


def _upload_sample(pair: str, path):
    if not path:
        raise InputError("upload a file first")
    return classifier(pair).spec.target.read_file(Path(path))


def classify_drawing(pair: str, editor_value) -> dict[str, float]:
    """The sketch pad's value (a dict with a 'composite' image, or an image) -> class probabilities."""
    return classifier(pair).predict(_drawing_sample(pair, editor_value))["probs"]


def classify_upload(pair: str, path) -> dict[str, float]:
    """An uploaded or recorded file -> class probabilities of the pair's shipped student."""
    return classifier(pair).predict(_upload_sample(pair, path))["probs"]


def nearest_photos(pair: str, sample, k: int = 5) -> list:
    """The k test photos whose teacher embeddings are nearest the student's embedding of `sample`."""
    found = shipped_test_embeddings(pair)
    embedding = embed(classifier(pair).student, sample[None], normalize=True).numpy()
    hits = nearest_neighbours(embedding, found["teacher"], k)[0]
    return [(picture(pair, int(h), "source"), found["class_names"][found["labels"][h]]) for h in hits]


def look_up_drawing(pair: str, editor_value) -> tuple[dict, list]:
    """Try it, sketch pad: class probabilities and the nearest test photos."""
    sample = _drawing_sample(pair, editor_value)
    return classifier(pair).predict(sample)["probs"], nearest_photos(pair, sample)


def look_up_upload(pair: str, path) -> tuple[dict, list]:
    """Try it, uploaded or recorded file: class probabilities and the nearest test photos."""
    sample = _upload_sample(pair, path)
    return classifier(pair).predict(sample)["probs"], nearest_photos(pair, sample)


def student_summary(pair: str) -> str:
    """One line on the shipped student: method, how it was chosen, its test accuracy."""
    meta = classifier(pair).metadata
    accuracy = ZERO_LABEL_HEAD.read(meta["metrics"])
    return (f"Shipped `{pair}` student: **{meta['method']}** (best on validation), zero-label "
            f"test accuracy {accuracy:.1%} through the teacher's head, with no target labels.")


def examples(pair: str) -> list[str]:
    return sorted(str(path) for path in paths.examples_dir().glob(f"{pair}__*")
                  if path.suffix in (".png", ".npy", ".wav"))


def try_it_panels() -> list[tuple[Modality, list[str]]]:
    """One Try-it panel per target modality that takes a person's input, with its pairs that ship
    a student, in registry order."""
    panels: dict[str, tuple[Modality, list[str]]] = {}
    for spec in pairs.PAIRS.values():
        if spec.target.try_it and (checkpoint_root() / f"student-{spec.name}.json").exists():
            panels.setdefault(spec.target.name, (spec.target, []))[1].append(spec.name)
    return list(panels.values())


def warm_up_in_background(pair_names=None) -> threading.Thread:
    """Load the Try-it pairs' students, shipped test items and photos in a daemon thread, so a
    visitor's first classification finds them ready (each is loaded once, however many ask). By
    default the first pair of each panel, the one a panel opens on."""
    pair_names = pair_names or [names[0] for _, names in try_it_panels()]

    def warm():
        for pair in pair_names:
            item_photos(pair)

    thread = threading.Thread(target=warm, daemon=True, name="try-it-warm-up")
    thread.start()
    return thread
