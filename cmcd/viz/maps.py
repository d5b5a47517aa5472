"""Pictures of the alignment: teacher and student embeddings in one 2-D map (UMAP, or PCA while
UMAP warms up), as a plotly figure. Coordinates are cached on disk per set of embeddings, since
UMAP's first fit in a process spends 15-25 s compiling."""

from __future__ import annotations

import hashlib
import io
import threading

import numpy as np
import plotly.graph_objects as go
import torch

from cmcd import paths
from cmcd.data import cache

PROJECTIONS = ("umap", "pca")
_umap_ready = threading.Event()


def _pca(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


def _umap(points: np.ndarray, seed: int) -> np.ndarray:
    import umap

    reducer = umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, metric="cosine",
                        random_state=seed, n_jobs=1)
    coordinates = reducer.fit_transform(points)
    _umap_ready.set()
    return coordinates


def warm_up_umap_in_background() -> threading.Thread:
    """Compile UMAP's numba code on a tiny fit in a daemon thread, so the first real map is fast."""
    def fit_tiny():
        _umap(np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32), seed=0)

    thread = threading.Thread(target=fit_tiny, daemon=True, name="umap-warm-up")
    thread.start()
    return thread


def umap_is_warm() -> bool:
    return _umap_ready.is_set()


def _points_and_path(teacher: np.ndarray, student: np.ndarray, projection: str, seed: int):
    if projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}; valid: {', '.join(PROJECTIONS)}")
    points = np.concatenate([teacher, student]).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True).clip(1e-12)
    digest = hashlib.sha256(points.tobytes() + f"{projection}{seed}".encode()).hexdigest()[:20]
    return points, paths.cache_dir() / "coordinates" / f"{digest}.safetensors"


def is_cached(teacher: np.ndarray, student: np.ndarray, projection: str, seed: int = 0) -> bool:
    return _points_and_path(teacher, student, projection, seed)[1].exists()


def coordinates(teacher: np.ndarray, student: np.ndarray, projection: str = "umap",
                seed: int = 0) -> np.ndarray:
    """2-D coordinates of teacher rows then student rows (normalised first), cached on disk."""
    points, path = _points_and_path(teacher, student, projection, seed)
    cached = cache.load_cached(path)
    if cached:
        return cached[0]["coordinates"].numpy()
    result = (_umap(points, seed) if projection == "umap" else _pca(points)).astype(np.float32)
    cache.save_tensors(path, {"coordinates": torch.from_numpy(result)})
    return result


def _data_uri(image) -> str:
    import base64

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def alignment_figure(coords: np.ndarray, labels: np.ndarray, class_names, target: str,
                     pairing: str, show_pair_lines: bool = False, title: str = "",
                     item_ids: np.ndarray | None = None, pictures=(),
                     selected: np.ndarray | None = None) -> go.Figure:
    """Teacher photos (circles) and student targets (crosses), coloured by class; hovering names
    the class, modality and test item. `pictures`: ((x, y), PIL image) drawn in the map.
    `selected` (a bool per item): the others are drawn grey and faint, not hidden."""
    n = len(labels)
    teacher_xy, student_xy = coords[:n], coords[n:]
    figure = go.Figure()
    if show_pair_lines:
        xs = np.column_stack([teacher_xy[:, 0], student_xy[:, 0], np.full(n, np.nan)]).ravel()
        ys = np.column_stack([teacher_xy[:, 1], student_xy[:, 1], np.full(n, np.nan)]).ravel()
        figure.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", hoverinfo="skip",
                                      line={"width": 0.5, "color": "rgba(120,120,120,0.35)"},
                                      name="pairs" if pairing == "instance" else "pairs (same class)"))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    for label, name in enumerate(class_names):
        rows = np.flatnonzero(labels == label)
        colour = palette[label % len(palette)]
        if selected is not None:
            colour = np.where(selected[rows], colour, "rgba(170,170,170,0.25)").tolist()
        for xy, modality, symbol in ((teacher_xy, "rgb (teacher)", "circle"),
                                     (student_xy, f"{target} (student)", "x")):
            figure.add_trace(go.Scattergl(
                x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=f"{name}: {modality}",
                legendgroup=str(label), marker={"color": colour, "symbol": symbol, "size": 6,
                                                "opacity": 0.8},
                hovertemplate=f"class {name}<br>{modality}<br>test item %{{customdata}}<extra></extra>",
                customdata=rows if item_ids is None else item_ids[rows]))
    size = 0.07 * max(np.ptp(coords[:, 0]), np.ptp(coords[:, 1]), 1e-6)
    figure.update_layout(images=[
        {"source": _data_uri(image), "x": float(x), "y": float(y), "xref": "x", "yref": "y",
         "sizex": size, "sizey": size, "xanchor": "center", "yanchor": "middle", "layer": "above"}
        for (x, y), image in pictures])
    figure.update_layout(title=title, height=560, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         xaxis={"visible": False}, yaxis={"visible": False})
    return figure
