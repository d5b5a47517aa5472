"""The shipped students and the test items the app shows: what the Try it, Alignment and Retrieve
tabs read.

A Space's disk is empty after each restart, so the app does not build pairs to answer: for each
pair, `cmcd/shipped/app/test-items.safetensors` (written by scripts/ship_app_items.py) holds
APP_ITEMS test items (their targets, labels and ids), their teacher and shipped-student
embeddings, and the alignment map's UMAP and PCA coordinates. A pair whose entry is missing, or
was written for another student than the one at checkpoint_root(), is built instead (slow on an
empty cache), once per process. The items' photos are not shipped (3 MB of noise-like pixels):
renders are keyed by item id, so the app renders just these items, in about a second.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

import numpy as np
import torch

from cmcd import paths
from cmcd.app.once import once_per_key
from cmcd.data import cache
from cmcd.eval.classify import Classifier, weights_digest
from cmcd.modalities import RenderRequest, pairs
from cmcd.models.embed import embed
from cmcd.train.teacher_cache import teacher_embeddings

THUMBNAIL = 96  # pixels, for galleries and map thumbnails
APP_ITEMS = 500  # test items per pair the app shows: its alignment map, retrieval, nearest photos
MAP_PROJECTIONS = ("umap", "pca")
RENDER_SEED = 0  # the seed of the pair data the app shows (pairs.load_pair's default)


def items_file() -> Path:
    return paths.shipped("app", "test-items.safetensors")


@once_per_key
def classifier(pair: str) -> Classifier:
    """The shipped student of a pair, loaded once per process."""
    return Classifier(pair)


def spread(count: int, points: int) -> np.ndarray:
    """Up to `points` indices spread evenly over `count` test items (the split is ordered by
    class, so every class is in)."""
    return np.linspace(0, count - 1, min(points, count)).astype(int)


def student_digest(pair: str) -> str:
    """A checksum of the pair's student weights, which the shipped embeddings were made with."""
    return weights_digest(pair)


@once_per_key
def built_pair(pair: str) -> pairs.PairData:
    """The pair's data at its default gap, built (or read from the cache) once per process."""
    return pairs.load_pair(pair)


def build_test_items(pair: str) -> dict:
    """The app's test items of a pair, built from the pair's data and the shipped student (slow
    on an empty cache: it renders the pair and embeds its photos with the teacher)."""
    model, data = classifier(pair), built_pair(pair)
    rows = torch.from_numpy(spread(len(data.test), APP_ITEMS))
    teacher = teacher_embeddings(data, model.metadata.get("teacher", "ft"), model.teacher,
                                 torch.device("cpu"))["test"][rows]
    return {"ids": data.test.ids[rows].numpy(), "labels": data.test.labels[rows].numpy(),
            "targets": data.test.target[rows],
            "teacher": teacher.numpy(), "student": embed(model.student, data.test.target[rows]).numpy(),
            "coordinates": {}}


def _quantise(targets: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """Targets as 8 bits over their range (they only become pictures): (codes, [low, high])."""
    low, high = float(targets.min()), float(targets.max())
    codes = ((targets - low) / max(high - low, 1e-12) * 255).round().to(torch.uint8)
    return codes, [low, high]


def encode_test_items(pair: str, items: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """One pair's items as tensors named PAIR/..., and what to store about them."""
    codes, value_range = _quantise(items["targets"])
    tensors = {"ids": torch.as_tensor(items["ids"]), "labels": torch.as_tensor(items["labels"]),
               "targets": codes,
               "teacher": torch.as_tensor(items["teacher"]).half(),
               "student": torch.as_tensor(items["student"]).half(),
               **{projection: torch.as_tensor(coords).float()
                  for projection, coords in items["coordinates"].items()}}
    about = {"student_digest": student_digest(pair), "target_range": value_range}
    return {f"{pair}/{name}": tensor for name, tensor in tensors.items()}, about


def write_items_file(path: Path, items_of: dict[str, dict]) -> None:
    """Write every pair's encoded items to one safetensors file, atomically."""
    tensors, about = {}, {}
    for pair, items in items_of.items():
        encoded, about[pair] = encode_test_items(pair, items)
        tensors.update(encoded)
    cache.save_tensors(path, tensors, {"pairs": about, "items_per_pair": APP_ITEMS})


def read_shipped_items(pair: str, path: Path | None = None) -> dict | None:
    """The pair's shipped items, or None when they are missing or were made with another student."""
    path = Path(path or items_file())
    if not path.exists():
        return None
    tensors, meta = cache.load_tensors(path)
    about = meta.get("pairs", {}).get(pair)
    if about is None or about["student_digest"] != student_digest(pair):
        return None
    mine = {name.split("/", 1)[1]: tensor for name, tensor in tensors.items()
            if name.startswith(f"{pair}/")}
    low, high = about["target_range"]
    return {"ids": mine["ids"].numpy(), "labels": mine["labels"].numpy(),
            "targets": low + mine["targets"].float() / 255 * (high - low),
            "teacher": mine["teacher"].float().numpy(), "student": mine["student"].float().numpy(),
            "coordinates": {p: mine[p].numpy() for p in MAP_PROJECTIONS if p in mine}}


@once_per_key
def shipped_test_embeddings(pair: str) -> dict:
    """The app's test items of a pair with their teacher and shipped-student embeddings (row i of
    each is item i), read from the shipped file, else built; loaded once per process."""
    items = read_shipped_items(pair)
    origin = "shipped" if items is not None else "built"
    items = items if items is not None else build_test_items(pair)
    spec = pairs.get_spec(pair)
    return {**items, "origin": origin, "class_names": classifier(pair).class_names,
            "target": spec.target.name, "pairing": spec.pairing}


@once_per_key
def item_photos(pair: str) -> torch.Tensor:
    """The photos (N, 3, 32, 32) uint8 of the pair's app test items, rendered from the shipped
    source images exactly as the pair's data holds them (renders are keyed by item id and seed)."""
    ids = shipped_test_embeddings(pair)["ids"]
    source = pairs.source_images(pairs.get_spec(pair).dataset)
    order = np.argsort(source.ids)
    rows = order[np.searchsorted(source.ids, ids, sorter=order)]
    return pairs.SOURCE.render(RenderRequest(source.images[rows], ids, source.labels[rows], "test",
                                             RENDER_SEED, gap=0.0))


def picture_file(image) -> str:
    """A PIL picture as a PNG file named by its content, written once and atomically into a folder
    of the system's temp dir (where Gradio may serve files from). Galleries get these paths, not
    PIL images: Gradio writes a PIL image it is given to a file named by its content, in place,
    so when two requests produced the same picture, a download of it could be cut short by the
    other request rewriting it."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    path = Path(tempfile.gettempdir()) / "cmcd-app-pictures" / f"{hashlib.sha256(data).hexdigest()}.png"
    if not path.exists():  # two writers at once each rename a whole file into place
        cache.atomic_write_bytes(path, data)
    return str(path)


def picture(pair: str, index: int, side: str):
    """An app test item's source photo or target (sketch, depth map, spectrogram) as a PIL image."""
    from PIL import Image

    found, spec = shipped_test_embeddings(pair), pairs.get_spec(pair)
    if side == "source":
        pixels = spec.source.to_picture(item_photos(pair)[index])
    else:
        pixels = spec.target.to_picture(found["targets"][index])
    return Image.fromarray(pixels).resize((THUMBNAIL, THUMBNAIL), Image.NEAREST)
