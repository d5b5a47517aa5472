"""The app's event functions, called directly, and the page built offline."""

import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cmcd import ui
from cmcd.checkpoints import checkpoint_root
from cmcd.inputs import InputError

pytestmark = pytest.mark.skipif(
    not (checkpoint_root() / "student-digits-sketch.safetensors").exists(),
    reason="no shipped students")


def _drawn_one(transparent: bool) -> np.ndarray:
    """A vertical stroke as the sketch pad returns it: RGBA, ink on a transparent canvas."""
    image = Image.new("RGBA", (280, 280), (255, 255, 255, 0 if transparent else 255))
    ImageDraw.Draw(image).line([(140, 40), (140, 240)], fill=(0, 0, 0, 255), width=18)
    return np.asarray(image)


@pytest.mark.parametrize("transparent", [True, False])
def test_drawing_a_one_is_read_as_a_one(transparent):
    probs = ui.classify_drawing("digits-sketch", {"composite": _drawn_one(transparent),
                                                  "background": None, "layers": []})
    assert max(probs, key=probs.get) == "1"
    assert abs(sum(probs.values()) - 1) < 1e-3


def test_empty_or_blank_sketch_pad_is_a_readable_error():
    with pytest.raises(InputError, match="draw something"):
        ui.classify_drawing("digits-sketch", {"composite": None, "background": None, "layers": []})
    blank = np.zeros((280, 280, 4), dtype=np.uint8)
    with pytest.raises(InputError, match="blank"):
        ui.classify_drawing("digits-sketch", {"composite": blank})


def test_uploads_are_classified_and_bad_ones_refused(tmp_path):
    depth = [path for path in ui.examples("digits-depth") if "__7__" in path and path.endswith(".npy")]
    speech = [path for path in ui.examples("digits-audio") if "__3__" in path]
    depth_probs = ui.classify_upload("digits-depth", depth[0])
    speech_probs = ui.classify_upload("digits-audio", speech[0])
    assert max(depth_probs, key=depth_probs.get) == "7"
    assert max(speech_probs, key=speech_probs.get) == "3"
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"nonsense")
    with pytest.raises(InputError):
        ui.classify_upload("digits-depth", broken)
    with pytest.raises(InputError, match="upload a file first"):
        ui.classify_upload("digits-audio", None)


def test_the_page_builds_offline():
    import app

    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    demo = app.build_demo()
    assert demo.title == "CMCD"


def test_compare_table_reads_the_benchmark_results():
    rows = ui.method_table_rows()
    assert len(rows) == 20 and all(len(row) == len(ui.TABLE_COLUMNS) for row in rows)
    assert {row[1] for row in rows} == {"cmc", "cmd", "cmc+l2", "l2"}
    assert all(0.0 <= value <= 1.0 for row in rows for value in row[2:])


def test_alignment_map_has_both_modalities_for_every_class_and_caches_coordinates():
    from cmcd import visualise

    figure = ui.alignment_plot("digits-depth", "pca", True, points=300)
    traces = [trace for trace in figure.data if trace.mode == "markers"]
    assert len(traces) == 20  # 10 classes x (teacher, student)
    assert all(len(trace.x) == 30 for trace in traces)  # 300 items spread over the 10 classes
    assert any(trace.mode == "lines" for trace in figure.data)
    found = ui.shipped_test_embeddings("digits-depth")
    teacher, student = found["teacher"][:300], found["student"][:300]
    before = set((visualise.cache.cache_dir() / "coordinates").glob("*.npy"))
    first = visualise.coordinates(teacher, student, "pca")
    written = set((visualise.cache.cache_dir() / "coordinates").glob("*.npy")) - before
    assert len(written) == 1
    assert np.array_equal(first, visualise.coordinates(teacher, student, "pca"))


def test_umap_map_on_a_few_hundred_points():
    figure = ui.alignment_plot("digits-sketch", "umap", False, points=200)
    xs = np.concatenate([trace.x for trace in figure.data if trace.mode == "markers"])
    assert len(xs) == 400 and np.isfinite(xs).all() and np.ptp(xs) > 0


def test_live_distillation_streams_progress_and_can_be_cancelled():
    import threading

    from cmcd.distill import DistillConfig

    config = DistillConfig(pair="digits-sketch", epochs=2, n_pairs=512, batch_size=128, width=8,
                           device="cpu")
    stream = ui.distill_events(config, threading.Event())
    events = []
    try:
        while True:
            events.append(next(stream))
    except StopIteration as finished:
        run = finished.value
    assert [e["epoch"] for e in events if e["kind"] == "epoch"] == [1, 2]
    assert run.metrics["n_pairs"] == 512 and not run.cancelled
    figure = ui.training_curves(events)
    assert len(figure.data) == 3
    assert dict(ui.metrics_rows(run.metrics))["zero-label accuracy, teacher head"] == \
        run.metrics["zero_label_acc"]["head"]

    stop = threading.Event()
    stop.set()
    cancelled = ui.distill_events(DistillConfig(pair="digits-sketch", epochs=3, n_pairs=512,
                                                batch_size=128, width=8, device="cpu"), stop)
    try:
        while True:
            next(cancelled)
    except StopIteration as finished:
        assert finished.value.cancelled and len(finished.value.history) <= 1


def test_latency_benchmark_times_each_modality_through_the_app_handlers():
    from cmcd import bench_app

    for pair in bench_app.EXAMPLE_OF:
        row = bench_app.classify_latency(pair, repeats=3)
        assert row["calls"] == 3 and 0 < row["p50_ms"] <= row["p95_ms"]
    assert bench_app.format_report({"startup_s": 1.0, "cpu_count": 2, "classify": {
        "digits-depth": {"p50_ms": 1.0, "p95_ms": 2.0, "calls": 3}}}).startswith("app start-up")
