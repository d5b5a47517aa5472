"""The Alignment, Retrieve and Distill tabs' pictures of embeddings: the pair strip, cross-modal
retrieval among test items, and alignment maps of teacher and student embeddings."""

from __future__ import annotations

import numpy as np

from cmcd.app.shipped import THUMBNAIL, picture, shipped_test_embeddings
from cmcd.data import pairs
from cmcd.data.inputs import InputError
from cmcd.data.sources import CLASS_NAMES
from cmcd.eval.metrics import nearest_neighbours
from cmcd.viz import maps

MAP_POINTS = 500  # test items in an alignment map


def pair_strip(pair: str, count: int = 6):
    """A few test items of a pair: photos on top, their targets below (one per class shown)."""
    from PIL import Image

    items = shipped_test_embeddings(pair)["items"]
    strip = Image.new("RGB", (count * (THUMBNAIL + 4), 2 * THUMBNAIL + 4), "white")
    for column, index in enumerate(spread(len(items.labels), count)):
        strip.paste(picture(pair, int(index), "source"), (column * (THUMBNAIL + 4), 0))
        strip.paste(picture(pair, int(index), "target"), (column * (THUMBNAIL + 4), THUMBNAIL + 4))
    return strip


def _caption(hit: int, query: int, labels, class_names, pairing: str) -> str:
    name = class_names[labels[hit]]
    if pairing == "instance" and hit == query:
        return f"✓ its own pair ({name})"
    return f"✓ {name}" if labels[hit] == labels[query] else f"✗ {name}"


def retrieve(pair: str, query: int, direction: str, k: int = 8) -> tuple[list, str]:
    """Top-k test items of the other modality for test item `query`, each captioned ✓ (its own
    pair, or its class) or ✗; direction 'target→source' or 'source→target'."""
    found = shipped_test_embeddings(pair)
    labels, names = found["labels"], found["class_names"]
    if not 0 <= query < len(labels):
        raise InputError(f"choose a test item from 0 to {len(labels) - 1}")
    to_source = direction == "target→source"
    queries, gallery = (found["student"], found["teacher"]) if to_source else (found["teacher"], found["student"])
    hits = nearest_neighbours(queries[[query]], gallery, k)[0]
    side = "source" if to_source else "target"
    items = [(picture(pair, int(h), side),
              _caption(int(h), query, labels, names, found["pairing"])) for h in hits]
    correct = sum(caption.startswith("✓") for _, caption in items)
    summary = (f"Query: test item {query}, a {names[labels[query]]} "
               f"({found['target'] if to_source else 'photo'}). {correct} of {len(items)} retrieved "
               f"{'photos' if to_source else found['target'] + ' items'} are right "
               f"({'same item or class' if found['pairing'] == 'instance' else 'same class'}).")
    return items, summary


def query_picture(pair: str, query: int, direction: str):
    side = "target" if direction == "target→source" else "source"
    return picture(pair, int(query), side)


def spread(count: int, points: int) -> np.ndarray:
    """Up to `points` indices spread evenly over `count` test items (the split is ordered by
    class, so every class is in)."""
    return np.linspace(0, count - 1, min(points, count)).astype(int)


def _thumbnails(pair: str, keep: np.ndarray, coords: np.ndarray, classes: int) -> list:
    """Two items per class, each as its photo and as its target, at their places in the map."""
    pictures = []
    for row in np.linspace(0, len(keep) - 1, 2 * classes).astype(int):
        pictures.append((coords[row], picture(pair, int(keep[row]), "source")))
        pictures.append((coords[len(keep) + row], picture(pair, int(keep[row]), "target")))
    return pictures


def alignment_figure(pair: str, teacher: np.ndarray, student: np.ndarray, labels: np.ndarray,
                     projection: str, title: str, show_pair_lines: bool = False,
                     points: int = MAP_POINTS, thumbnails: bool = False):
    """The alignment map of test embeddings (row i of teacher and student is test item i) on
    `points` items spread over every class; `thumbnails` draws a few items in place."""
    spec = pairs.get_spec(pair)
    class_names = CLASS_NAMES[spec.dataset]
    keep = spread(len(labels), points)
    coords = maps.coordinates(teacher[keep], student[keep], projection)
    pictures = _thumbnails(pair, keep, coords, len(class_names)) if thumbnails else []
    return maps.alignment_figure(coords, labels[keep], class_names, spec.target, spec.pairing,
                                 show_pair_lines, title, item_ids=keep, pictures=pictures)


def alignment_plot(pair: str, projection: str, show_pair_lines: bool, thumbnails: bool = False,
                   points: int = MAP_POINTS, pca_while_umap_warms: bool = False):
    """The shipped student's alignment map. `pca_while_umap_warms`: answer at once with PCA
    while UMAP is still compiling (the app)."""
    found = shipped_test_embeddings(pair)
    teacher, student, labels = found["teacher"], found["student"], found["labels"]
    keep = spread(len(labels), points)
    note = ""
    if (projection == "umap" and pca_while_umap_warms and not maps.umap_is_warm()
            and not maps.is_cached(teacher[keep], student[keep], "umap")):
        projection, note = "pca", " (UMAP is still warming up: choose it again in a few seconds)"
    title = (f"{pair}: teacher photos (circles) and student {found['target']} (crosses), "
             f"{projection.upper()}{note}")
    return alignment_figure(pair, teacher, student, labels, projection, title, show_pair_lines,
                            points, thumbnails)
