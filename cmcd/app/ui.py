"""What the app's event handlers do, as plain functions over the library (no gradio here, so
they can be tested directly and the library never depends on the UI)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from cmcd import paths

from cmcd.eval.classify import Classifier
from cmcd.data.inputs import InputError
from cmcd.modalities.sketch import sketch_from_array

EXAMPLES = paths.examples_dir()
COMPARE_METRICS = (  # (metric, column heading) of the comparison table
    ("zero_label_acc.head", "zero-label head"),
    ("zero_label_acc.prototype", "zero-label prototype"),
    ("few_label_acc.1", "1 label/class"),
    ("few_label_acc.10", "10 labels/class"),
    ("retrieval.target_to_source.r1", "R@1 target→source"),
    ("retrieval.source_to_target.r1", "R@1 source→target"),
    ("tv_distance", "TV (embeddings)"),
    ("tv_distance_head", "TV (head)"),
)
COMPARE_COLUMNS = ["student", *(heading for _, heading in COMPARE_METRICS)]
THUMBNAIL = 96  # pixels, for galleries and map thumbnails


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


def _drawing_sample(editor_value):
    image = editor_value.get("composite") if isinstance(editor_value, dict) else editor_value
    if image is None:
        raise InputError("draw something on the sketch pad first")
    return sketch_from_array(drawing_to_grey(image))


def _upload_sample(pair: str, path):
    if not path:
        raise InputError("upload a file first")
    return classifier(pair).spec.target.read_file(Path(path))


def classify_drawing(pair: str, editor_value) -> dict[str, float]:
    """The sketch pad's value (a dict with a 'composite' image, or an image) -> class probabilities."""
    return classifier(pair).predict(_drawing_sample(editor_value))["probs"]


def classify_upload(pair: str, path) -> dict[str, float]:
    """An uploaded or recorded file -> class probabilities of the pair's shipped student."""
    return classifier(pair).predict(_upload_sample(pair, path))["probs"]


def student_summary(pair: str) -> str:
    """One line on the shipped student: method, how it was chosen, its test accuracy."""
    meta = classifier(pair).metadata
    accuracy = meta["metrics"]["zero_label_acc"]
    return (f"Shipped `{pair}` student: **{meta['method']}** (best on validation), zero-label "
            f"test accuracy {accuracy['head']:.1%} through the teacher's head, with no target labels.")


def examples(pair: str) -> list[str]:
    return sorted(str(path) for path in EXAMPLES.glob(f"{pair}__*")
                  if path.suffix in (".png", ".npy", ".wav"))


def _results(name: str) -> dict | None:
    import json

    path = paths.results_dir() / name
    return json.loads(path.read_text()) if path.exists() else None


def compare_rows(pair: str, session_runs: list[dict] | None = None) -> list[list]:
    """This session's runs of `pair` (each with the untrained student it started from), then every
    method of the paper benchmark on the pair (mean ± std over seeds), when results/paper.json exists."""
    from cmcd.bench.runner import lookup, mean_std

    rows = []
    for run in session_runs or []:
        if run["pair"] != pair:
            continue
        rows.append([f"your run: {run['label']}", *(lookup(run["metrics"], n) for n, _ in COMPARE_METRICS)])
        rows.append([f"the same student untrained (seed {run['seed']})",
                     *(lookup(run["untrained"], n) for n, _ in COMPARE_METRICS)])
    paper = _results("paper.json")
    if paper:
        by_method: dict[str, list[dict]] = {}
        for run in paper["runs"]:
            if run["study"] == "main" and run["config"]["pair"] == pair:
                by_method.setdefault(run["config"]["method"], []).append(run["metrics"])
        from cmcd.train.objectives import METHODS

        for method, runs in sorted(by_method.items(), key=lambda item: METHODS.index(item[0])):
            cells = []
            for name, _ in COMPARE_METRICS:
                mean, std = mean_std([lookup(m, name) for m in runs])
                cells.append(f"{mean:.3f} ± {std:.3f}")
            rows.append([f"benchmark: {method} ({len(runs)} seeds)", *cells])
    return rows


def session_summary(run, untrained: dict) -> dict:
    """What a browser session keeps of one of its runs: small, JSON-ready, no tensors."""
    c = run.config
    label = (f"{c.method}, {run.metrics['n_pairs']:,} pairs, {run.metrics['steps']} steps, "
             f"batch {c.batch_size}, "
             + "".join(f"{name} {value}, " for name, value in c.loss.to_dict().items())
             + f"seed {c.seed}")
    return {"pair": c.pair, "label": label, "seed": c.seed, "metrics": run.metrics,
            "untrained": untrained}


@lru_cache(maxsize=16)
def untrained_metrics(pair: str, seed: int, width: int, device: str = "auto") -> dict:
    """Test metrics of the student a run starts from, before any training (method `random`)."""
    from cmcd.train.config import DistillConfig
    from cmcd.train.distill import distill

    return distill(DistillConfig(pair=pair, method="random", seed=seed, width=width,
                                 device=device)).metrics


def gpu_seconds(epochs: int, n_pairs: int) -> int:
    """How long to ask a Spaces ZeroGPU for one run: start-up and evaluation plus training at a
    pessimistic 10,000 pairs/s."""
    return int(min(300, 45 + epochs * n_pairs / 10_000))


def theory_figure():
    """Error against estimated TV from results/theory.json (None before the benchmark ran)."""
    from cmcd.bench import theory as bench_theory
    from cmcd.viz import figures

    report = _results("theory.json")
    if not report:
        return None
    return figures.plotly_figure(bench_theory.panels(report), "Target error against estimated TV distance")


def theory_text() -> str:
    report = _results("theory.json")
    bound = ("**What the paper's bound says.** The student's error on the target modality is at "
             "most the teacher's error on the source plus the total-variation (TV) distance "
             "between the two latent distributions (and a term for how differently the two "
             "modalities are labelled). So the closer distillation brings the student's "
             "embeddings to the teacher's, the less accuracy it can lose.")
    if not report:
        return bound + "\n\nRun `cmcd bench theory` to measure it here."
    head, embedding = report["summary"]["tv_distance_head"], report["summary"]["tv_distance"]
    return (bound + f"\n\n**What we measured** (`{report['command']}`, {len(report['points'])} "
            f"students on {report['device']}): Spearman ρ between TV and error is "
            f"{head['spearman_all']:.2f} when TV is estimated as the teacher's head sees the "
            f"embeddings, {embedding['spearman_all']:.2f} for the embeddings themselves, whose TV "
            "sits near 1 for contrastive students that lose no accuracy for it. Each point is one "
            "student at one gap level; hover for its pair and gap.")


# --- pictures of items: galleries and map thumbnails ---------------------------------------------

def held_out_items(pair: str):
    """The pair's test split (photos, targets, labels), kept with its embeddings: one load per pair."""
    return shipped_test_embeddings(pair)["items"]


def picture(pair: str, index: int, side: str):
    """A test item's source photo or target (sketch, depth map, spectrogram) as a PIL image."""
    from PIL import Image

    from cmcd.data import pairs
    items, spec = held_out_items(pair), pairs.get_spec(pair)
    if side == "source":
        pixels = spec.source.to_picture(items.source[index])
    else:
        pixels = spec.target.to_picture(items.target[index])
    return Image.fromarray(pixels).resize((THUMBNAIL, THUMBNAIL), Image.NEAREST)


def pair_strip(pair: str, count: int = 6):
    """A few test items of a pair: photos on top, their targets below (one per class shown)."""
    from PIL import Image

    items = held_out_items(pair)
    picks = np.linspace(0, len(items.labels) - 1, count).astype(int)  # the split is ordered by class
    strip = Image.new("RGB", (count * (THUMBNAIL + 4), 2 * THUMBNAIL + 4), "white")
    for column, index in enumerate(picks):
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
    from cmcd.eval.metrics import nearest_neighbours

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


def nearest_photos(pair: str, sample, k: int = 5) -> list:
    """The k test photos whose teacher embeddings are nearest the student's embedding of `sample`."""
    from cmcd.eval.metrics import nearest_neighbours

    found = shipped_test_embeddings(pair)
    embedding = classifier(pair).embed(sample[None]).numpy()
    hits = nearest_neighbours(embedding, found["teacher"], k)[0]
    return [(picture(pair, int(h), "source"), found["class_names"][found["labels"][h]]) for h in hits]


def look_up_drawing(pair: str, editor_value) -> tuple[dict, list]:
    """Try it, sketch pad: class probabilities and the nearest test photos."""
    sample = _drawing_sample(editor_value)
    return classifier(pair).predict(sample)["probs"], nearest_photos(pair, sample)


def look_up_upload(pair: str, path) -> tuple[dict, list]:
    """Try it, uploaded or recorded file: class probabilities and the nearest test photos."""
    sample = _upload_sample(pair, path)
    return classifier(pair).predict(sample)["probs"], nearest_photos(pair, sample)


def warm_up_in_background(pair_names=("digits-sketch", "digits-depth", "digits-audio")):
    """Build the Try-it pairs' data and embeddings in a daemon thread, so a visitor's first
    classification does not wait for them (a cold cache takes about half a minute)."""
    import threading

    def warm():
        for pair in pair_names:
            shipped_test_embeddings(pair)

    thread = threading.Thread(target=warm, daemon=True, name="embeddings-warm-up")
    thread.start()
    return thread


@lru_cache(maxsize=8)
def shipped_test_embeddings(pair: str) -> dict:
    """Teacher and shipped-student embeddings of the pair's test items (computed once), with the
    items themselves for pictures."""
    import torch

    from cmcd.data import pairs
    from cmcd.train.distill import embed
    from cmcd.train.teacher_cache import teacher_embeddings

    model = classifier(pair)
    data = pairs.load_pair(pair)
    cpu = torch.device("cpu")
    teacher = teacher_embeddings(data, model.metadata.get("teacher", "ft"), model.teacher, cpu)
    return {"teacher": teacher["test"].numpy(), "student": embed(model.student, data.test.target, cpu).numpy(),
            "labels": data.test.labels.numpy(), "class_names": data.class_names,
            "target": data.spec.target.name, "pairing": data.spec.pairing, "items": data.test}


def alignment_plot(pair: str, projection: str, show_pair_lines: bool, thumbnails: bool = False,
                   points: int = 500, pca_while_umap_warms: bool = False):
    """The shipped student's alignment map on `points` test items spread over every class (the
    test split is ordered by class); `thumbnails` draws a few items' photos and targets in place.
    `pca_while_umap_warms`: answer at once with PCA while UMAP is still compiling (the app)."""
    from cmcd.viz import maps as visualise

    found = shipped_test_embeddings(pair)
    keep = np.linspace(0, len(found["labels"]) - 1, min(points, len(found["labels"]))).astype(int)
    labels = found["labels"][keep]
    teacher, student = found["teacher"][keep], found["student"][keep]
    note = ""
    if (projection == "umap" and pca_while_umap_warms and not visualise.umap_is_warm()
            and not visualise.is_cached(teacher, student, "umap")):
        projection, note = "pca", " (UMAP is still warming up: choose it again in a few seconds)"
    coords = visualise.coordinates(teacher, student, projection)
    title = (f"{pair}: teacher photos (circles) and student {found['target']} (crosses), "
             f"{projection.upper()}{note}")
    pictures = []
    if thumbnails:  # two items per class, each as its photo and as its target
        for row in np.linspace(0, len(keep) - 1, 2 * len(found["class_names"])).astype(int):
            pictures.append((coords[row], picture(pair, int(keep[row]), "source")))
            pictures.append((coords[len(keep) + row], picture(pair, int(keep[row]), "target")))
    return visualise.alignment_figure(coords, labels, found["class_names"], found["target"],
                                      found["pairing"], show_pair_lines, title, item_ids=keep,
                                      pictures=pictures)


def distill_events(config, stop):
    """Run `distill(config)` in a worker thread and yield its progress events as they come; the
    finished run is the generator's return value. Setting `stop` (a threading.Event) cancels."""
    import queue
    import threading

    from cmcd.train.distill import distill

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
        ["TV distance, embeddings (estimate)", metrics["tv_distance"]],
        ["TV distance, as the teacher's head sees them", metrics["tv_distance_head"]],
        ["training pairs/s", metrics["pairs_per_s"]],
        ["wall time, s", metrics["wall_s"]],
    ]
