"""The Alignment, Retrieve and Distill tabs' pictures of embeddings: the pair strip, cross-modal
retrieval among test items, and alignment maps of teacher and student embeddings."""

from __future__ import annotations

import numpy as np

from cmcd.app.once import once_per_key
from cmcd.app.shipped import APP_ITEMS, THUMBNAIL, built_pair, picture, shipped_test_embeddings, spread
from cmcd.data.inputs import InputError
from cmcd.data.sources import CLASS_NAMES
from cmcd.eval.metrics import nearest_neighbours
from cmcd.modalities import pairs
from cmcd.viz import maps

MAP_POINTS = APP_ITEMS  # test items in an alignment map


def pair_strip(pair: str, count: int = 6):
    """A few test items of a pair: photos on top, their targets below (one per class shown)."""
    from PIL import Image

    labels = shipped_test_embeddings(pair)["labels"]
    strip = Image.new("RGB", (count * (THUMBNAIL + 4), 2 * THUMBNAIL + 4), "white")
    for column, index in enumerate(spread(len(labels), count)):
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
    student, teacher = found["student"], found["teacher"]
    queries, gallery = (student, teacher) if to_source else (teacher, student)
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


def _thumbnails(pair: str, keep: np.ndarray, coords: np.ndarray, classes: int) -> list:
    """Two items per class, each as its photo and as its target, at their places in the map."""
    pictures = []
    for row in np.linspace(0, len(keep) - 1, 2 * classes).astype(int):
        pictures.append((coords[row], picture(pair, int(keep[row]), "source")))
        pictures.append((coords[len(keep) + row], picture(pair, int(keep[row]), "target")))
    return pictures


def _map_figure(pair: str, coords: np.ndarray, labels: np.ndarray, keep: np.ndarray, title: str,
                show_pair_lines: bool, pictures=(), selected: np.ndarray | None = None):
    spec = pairs.get_spec(pair)
    return maps.alignment_figure(coords, labels[keep], CLASS_NAMES[spec.dataset], spec.target,
                                 spec.pairing, show_pair_lines, title, item_ids=keep, pictures=pictures,
                                 selected=selected)


def search(pair: str, query: str, labels: np.ndarray, items: np.ndarray) -> np.ndarray | None:
    """Which map items a search picks (a bool per item), or None for an empty search: terms
    separated by commas, each a class name (any case) or a test item's number (#12, or 12 where
    no class is named 12)."""
    terms = [term.strip() for term in (query or "").split(",") if term.strip()]
    if not terms:
        return None
    names = [name.lower() for name in CLASS_NAMES[pairs.get_spec(pair).dataset]]
    picked = np.zeros(len(items), dtype=bool)
    for term in terms:
        if term.lower() in names:
            picked |= labels[items] == names.index(term.lower())
        elif term.removeprefix("#").strip().isdigit():
            picked |= items == int(term.removeprefix("#"))
        else:
            raise InputError(f"{term!r} is neither a class ({', '.join(names)}) nor a test item number")
    if not picked.any():
        raise InputError(f"no test item in the map matches {query!r}; the map shows items "
                         f"{items[0]} to {items[-1]}")
    return picked


def alignment_figure(pair: str, teacher: np.ndarray, student: np.ndarray, labels: np.ndarray,
                     projection: str, title: str, show_pair_lines: bool = False,
                     points: int = MAP_POINTS):
    """The alignment map of any test embeddings (row i of teacher and student is test item i,
    such as a run's) on `points` items spread over every class."""
    keep = spread(len(labels), points)
    coords = maps.coordinates(teacher[keep], student[keep], projection)
    return _map_figure(pair, coords, labels, keep, title, show_pair_lines)


@once_per_key
def _warm_up_umap() -> None:
    maps.warm_up_umap_in_background()


def _is_shipped_map(found: dict, keep: np.ndarray, projection: str) -> bool:
    """Whether the map shows every shipped item in a projection whose coordinates are shipped."""
    return len(keep) == len(found["labels"]) and projection in found["coordinates"]


def _map_coordinates(found: dict, keep: np.ndarray, projection: str) -> np.ndarray:
    """The shipped coordinates when the map shows every shipped item, else computed (cached)."""
    if _is_shipped_map(found, keep, projection):
        return found["coordinates"][projection]
    return maps.coordinates(found["teacher"][keep], found["student"][keep], projection)


def _umap_not_ready(found: dict, keep: np.ndarray) -> bool:
    """True while a UMAP map would have to wait for UMAP to compile (which then starts)."""
    if (_is_shipped_map(found, keep, "umap") or maps.umap_is_warm()
            or maps.is_cached(found["teacher"][keep], found["student"][keep], "umap")):
        return False
    _warm_up_umap()
    return True


def alignment_plot(pair: str, projection: str, show_pair_lines: bool, thumbnails: bool = False,
                   points: int = MAP_POINTS, pca_while_umap_warms: bool = False, query: str = ""):
    """The shipped student's alignment map (shipped coordinates for the full map). `thumbnails`
    draws a few items in place; `pca_while_umap_warms`: answer at once with PCA while UMAP is
    still compiling (the app), compiling it in the background; `query` (see `search`) greys the
    items it does not pick."""
    found = shipped_test_embeddings(pair)
    keep = spread(len(found["labels"]), points)
    selected = search(pair, query, found["labels"], keep)
    note = ""
    if projection == "umap" and pca_while_umap_warms and _umap_not_ready(found, keep):
        projection, note = "pca", " (UMAP is still warming up: choose it again in a few seconds)"
    coords = _map_coordinates(found, keep, projection)
    title = (f"{pair}: teacher photos (circles) and student {found['target']} (crosses), "
             f"{projection.upper()}{note}")
    classes = len(found["class_names"])
    pictures = _thumbnails(pair, keep, coords, classes) if thumbnails else []
    return _map_figure(pair, coords, found["labels"], keep, title, show_pair_lines, pictures, selected)


def export_embeddings(pair: str) -> list[str]:
    """The shipped student's map items of a pair as embeddings.parquet, vectors.tsv and
    metadata.tsv (with the map's UMAP and PCA coordinates), in a folder of the system's temp dir
    (where Gradio may serve files from); every request writes the same files, atomically."""
    import tempfile
    from pathlib import Path

    from cmcd.eval.embedding_export import write_embeddings

    found = shipped_test_embeddings(pair)
    out = Path(tempfile.gettempdir()) / "cmcd-app-exports" / f"{pair}-{found.get('origin')}"
    written = write_embeddings(out, pair, found, found["coordinates"])
    return [str(path) for path in written.values()]


@once_per_key
def data_sheet(pair: str):
    """The Data tab: a pair's contact sheet and a caption (built once per pair, on first view)."""
    from cmcd.viz.contact_sheet import contact_sheet

    data = built_pair(pair)
    spec = data.spec
    pairing = ("class pairs (any clip of the same digit, as in AV-MNIST)" if spec.pairing == "class"
               else "instance pairs (the same item in both modalities)")
    sizes = ", ".join(f"{split}: {count:,}" for split, count in data.sizes().items())
    caption = (f"**{pair}**: rgb → {spec.target}, {pairing}. Gap {data.gap} ({spec.gap_meaning}). "
               f"Splits: {sizes}. Source: {data.source_origin}.")
    return contact_sheet(data), caption
