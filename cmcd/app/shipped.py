"""The shipped students and their pair's test split, loaded once per process: what the Try it,
Alignment and Retrieve tabs show."""

from __future__ import annotations

from functools import lru_cache

import torch

from cmcd.data import pairs
from cmcd.eval.classify import Classifier
from cmcd.models.embed import embed
from cmcd.train.teacher_cache import teacher_embeddings

THUMBNAIL = 96  # pixels, for galleries and map thumbnails


@lru_cache(maxsize=8)
def classifier(pair: str) -> Classifier:
    """The shipped student of a pair, loaded once per process."""
    return Classifier(pair)


@lru_cache(maxsize=8)
def shipped_test_embeddings(pair: str) -> dict:
    """Teacher and shipped-student embeddings of the pair's test items (computed once), with the
    items themselves for pictures."""
    model = classifier(pair)
    data = pairs.load_pair(pair)
    teacher = teacher_embeddings(data, model.metadata.get("teacher", "ft"), model.teacher,
                                 torch.device("cpu"))
    return {"teacher": teacher["test"].numpy(), "student": embed(model.student, data.test.target).numpy(),
            "labels": data.test.labels.numpy(), "class_names": data.class_names,
            "target": data.spec.target.name, "pairing": data.spec.pairing, "items": data.test}


def picture(pair: str, index: int, side: str):
    """A test item's source photo or target (sketch, depth map, spectrogram) as a PIL image."""
    from PIL import Image

    items, spec = shipped_test_embeddings(pair)["items"], pairs.get_spec(pair)
    if side == "source":
        pixels = spec.source.to_picture(items.source[index])
    else:
        pixels = spec.target.to_picture(items.target[index])
    return Image.fromarray(pixels).resize((THUMBNAIL, THUMBNAIL), Image.NEAREST)
