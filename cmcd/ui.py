"""What the app's event handlers do, as plain functions over the library (no gradio here, so
they can be tested directly and the library never depends on the UI)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from cmcd.classify import Classifier
from cmcd.inputs import InputError, load_input, sketch_from_array

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
METHOD_TABLE = ROOT / "results" / "methods.json"
TABLE_COLUMNS = ["pair", "method", "zero-label head", "zero-label prototype", "few-label 10",
                 "R@1 target→source", "R@1 source→target", "TV"]


@lru_cache(maxsize=8)
def classifier(pair: str) -> Classifier:
    """The shipped student of a pair, loaded once per process."""
    return Classifier(pair)


def drawing_to_grey(image: np.ndarray) -> np.ndarray:
    """A sketch-pad image (H, W), (H, W, 3) or (H, W, 4) -> greyscale in [0, 1] on white paper
    (transparent pixels are paper)."""
    image = np.asarray(image, dtype=np.float32)
    if image.max() > 1.0:
        image = image / 255.0
    if image.ndim == 2:
        return image
    rgb, alpha = image[..., :3], (image[..., 3:4] if image.shape[-1] == 4 else 1.0)
    return (rgb * alpha + (1.0 - alpha)).mean(axis=-1)


def classify_drawing(pair: str, editor_value) -> dict[str, float]:
    """The sketch pad's value (a dict with a 'composite' image, or an image) -> class probabilities."""
    image = editor_value.get("composite") if isinstance(editor_value, dict) else editor_value
    if image is None:
        raise InputError("draw something on the sketch pad first")
    sample = sketch_from_array(drawing_to_grey(image))
    return classifier(pair).predict(sample)["probs"]


def classify_upload(pair: str, path) -> dict[str, float]:
    """An uploaded or recorded file -> class probabilities of the pair's shipped student."""
    if not path:
        raise InputError("upload a file first")
    spec = classifier(pair).spec
    return classifier(pair).predict(load_input(spec.target, Path(path)))["probs"]


def student_summary(pair: str) -> str:
    """One line on the shipped student: method, how it was chosen, its test accuracy."""
    meta = classifier(pair).metadata
    accuracy = meta["metrics"]["zero_label_acc"]
    return (f"Shipped `{pair}` student: **{meta['method']}** (best on validation), zero-label "
            f"test accuracy {accuracy['head']:.1%} through the teacher's head, with no target labels.")


def examples(pair: str) -> list[str]:
    return sorted(str(path) for path in EXAMPLES.glob(f"{pair}__*")
                  if path.suffix in (".png", ".npy", ".wav"))


def method_table_rows() -> list[list]:
    """The benchmark's default-settings runs (results/methods.json), one row per pair and method."""
    if not METHOD_TABLE.exists():
        return []
    import json

    rows = []
    for m in json.loads(METHOD_TABLE.read_text())["runs"]:
        retrieval = m["retrieval"]
        rows.append([m["pair"], m["method"], m["zero_label_acc"]["head"],
                     m["zero_label_acc"]["prototype"], m["few_label_acc"]["10"],
                     retrieval["target_to_source"]["r1"], retrieval["source_to_target"]["r1"],
                     m["tv_distance"]])
    return rows


@lru_cache(maxsize=8)
def shipped_test_embeddings(pair: str) -> dict:
    """Teacher and shipped-student embeddings of the pair's test items (computed once)."""
    import torch

    from cmcd import pairs
    from cmcd.distill import embed, teacher_embeddings

    model = classifier(pair)
    data = pairs.load_pair(pair)
    cpu = torch.device("cpu")
    teacher = teacher_embeddings(data, model.metadata.get("teacher", "ft"), model.teacher, cpu)
    return {"teacher": teacher["test"].numpy(), "student": embed(model.student, data.test.target, cpu).numpy(),
            "labels": data.test.labels.numpy(), "class_names": data.class_names,
            "target": data.spec.target, "pairing": data.spec.pairing}


def alignment_plot(pair: str, projection: str, show_pair_lines: bool, points: int = 500):
    """The shipped student's alignment map on `points` test items spread over every class (the
    test split is ordered by class)."""
    from cmcd import visualise

    found = shipped_test_embeddings(pair)
    keep = np.linspace(0, len(found["labels"]) - 1, min(points, len(found["labels"]))).astype(int)
    labels = found["labels"][keep]
    coords = visualise.coordinates(found["teacher"][keep], found["student"][keep], projection)
    title = f"{pair}: teacher photos (circles) and student {found['target']} (crosses), {projection.upper()}"
    return visualise.alignment_figure(coords, labels, found["class_names"], found["target"],
                                      found["pairing"], show_pair_lines, title)


def distill_events(config, stop):
    """Run `distill(config)` in a worker thread and yield its progress events as they come; the
    finished run is the generator's return value. Setting `stop` (a threading.Event) cancels."""
    import queue
    import threading

    from cmcd.distill import distill

    events: queue.Queue = queue.Queue()
    outcome: dict = {}

    def work():
        try:
            outcome["run"] = distill(config, progress=events.put, should_stop=stop.is_set)
        except Exception as error:  # handed to the caller's thread below
            outcome["error"] = error
        finally:
            events.put(None)

    worker = threading.Thread(target=work, daemon=True, name="distill")
    worker.start()
    while (event := events.get()) is not None:
        yield event
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["run"]


def training_curves(events: list[dict]):
    """Loss per logged step and validation accuracy per epoch, as one plotly figure."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    steps = [e for e in events if e["kind"] == "step"]
    epochs = [e for e in events if e["kind"] == "epoch"]
    figure = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "validation zero-label accuracy"))
    figure.add_trace(go.Scatter(x=[e["step"] for e in steps], y=[e["loss"] for e in steps],
                                mode="lines", name="loss"), row=1, col=1)
    for key in ("head", "prototype"):
        figure.add_trace(go.Scatter(x=[e["epoch"] for e in epochs], y=[e[key] for e in epochs],
                                    mode="lines+markers", name=key), row=1, col=2)
    figure.update_xaxes(title_text="step", row=1, col=1)
    figure.update_xaxes(title_text="epoch", row=1, col=2)
    figure.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def metrics_rows(metrics: dict) -> list[list]:
    """One run's metrics as [name, value] rows for a table."""
    retrieval = metrics["retrieval"]
    return [
        ["zero-label accuracy, teacher head", metrics["zero_label_acc"]["head"]],
        ["zero-label accuracy, nearest prototype", metrics["zero_label_acc"]["prototype"]],
        *([f"few-label accuracy, {k} per class", v] for k, v in metrics["few_label_acc"].items()),
        ["R@1 target→source", retrieval["target_to_source"]["r1"]],
        ["R@1 source→target", retrieval["source_to_target"]["r1"]],
        ["TV distance (estimate)", metrics["tv_distance"]],
        ["training pairs/s", metrics["pairs_per_s"]],
        ["wall time, s", metrics["wall_s"]],
    ]
