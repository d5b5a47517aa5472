"""The app's event functions, called directly, and the page built offline."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cmcd import paths
from cmcd.app import compare, explore, shipped, training, tryit, your_runs
from cmcd.data.inputs import InputError
from cmcd.eval import records


def _drawn_one(transparent: bool) -> np.ndarray:
    """A vertical stroke as the sketch pad returns it: RGBA, ink on a transparent canvas."""
    image = Image.new("RGBA", (280, 280), (255, 255, 255, 0 if transparent else 255))
    ImageDraw.Draw(image).line([(140, 40), (140, 240)], fill=(0, 0, 0, 255), width=18)
    return np.asarray(image)


@pytest.mark.parametrize("transparent", [True, False])
def test_drawing_a_one_is_read_as_a_one(transparent):
    probs, _, verdict, answer = tryit.look_up_drawing(
        "digits-sketch", {"composite": _drawn_one(transparent), "background": None, "layers": []})
    assert max(probs, key=probs.get) == "1" == answer["label"] == answer["closest"]
    assert abs(sum(probs.values()) - 1) < 1e-3
    assert verdict.endswith(f"1 ({round(100 * answer['confidence'])} %)")


def test_a_drawing_of_no_digit_is_not_sure_and_names_the_closest():
    from cmcd.modalities.sketch import strokes

    assert shipped.classifier("digits-sketch").metadata.get("calibration"), "no calibration shipped"
    rng = np.random.default_rng(0)
    for letter in ("L", "X", "H"):
        grey = strokes.draw(strokes.LETTERS[letter], strokes.Pen(canvas=(280, 280), width=12), rng)
        probs, _, verdict, answer = tryit.look_up_drawing("digits-sketch", {"composite": grey * 255})
        assert answer["unsure"] is True, letter
        closest = max(probs, key=probs.get)
        assert verdict == f"### Not sure — closest: {closest} ({round(100 * probs[closest])} %)"


def test_the_real_input_figures_come_from_the_inputs_benchmark(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("CMCD_RESULTS", str(tmp_path))
    assert "Not measured yet" in tryit.real_inputs_summary()
    entry = {"student_digest": shipped.student_digest("digits-audio"), "junk_caught": 0.875,
             "real_samples": {"what": "a real person", "correct": 8, "n": 10,
                              "unsure_items": [False] * 9 + [True]},
             "synthetic_test": {"rendered": {"accuracy": 0.99},
                                "as_files": {"accuracy": 0.98, "unsure": 0.05}}}
    stale = {**entry, "student_digest": "another student"}
    (tmp_path / "inputs.json").write_text(json.dumps({"pairs": {"digits-audio": entry,
                                                                "digits-depth": stale}}))
    assert "**8/10** read right, 1 \"not sure\"" in tryit.student_summary("digits-audio")
    assert "88% caught" in tryit.student_summary("digits-audio")
    assert "Real inputs" not in tryit.student_summary("digits-depth")  # measured on another student
    assert "`digits-audio`: synthetic test 99.0%" in tryit.real_inputs_summary()


def test_empty_or_blank_sketch_pad_is_a_readable_error():
    with pytest.raises(InputError, match="draw something"):
        tryit.look_up_drawing("digits-sketch", {"composite": None, "background": None, "layers": []})
    blank = np.zeros((280, 280, 4), dtype=np.uint8)
    with pytest.raises(InputError, match="blank"):
        tryit.look_up_drawing("digits-sketch", {"composite": blank})


def _pad_value(path):
    """The sketch pad's payload for a picture uploaded to it, as a client may send it."""
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData

    picture = FileData(path=str(path), orig_name=Path(path).name)
    return EditorData(background=picture, layers=[], composite=picture)


def test_the_sketch_pad_takes_a_picture_and_refuses_one_it_cannot_decode_in_one_sentence(tmp_path):
    import gradio as gr

    import app
    from cmcd.modalities import get_modality

    pad = app.WIDGETS["sketchpad"](get_modality("sketch").try_it)
    assert "upload" in pad.sources
    [seven] = [path for path in tryit.examples("digits-sketch") if "__7__" in path]
    probs, photos, *_ = tryit.look_up_drawing("digits-sketch", pad.preprocess(_pad_value(seven)))
    assert max(probs, key=probs.get) == "7" and len(photos) == 5
    svg = tmp_path / "drawing.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><line x1="4" '
                   'y1="0" x2="4" y2="9" stroke="black"/></svg>')
    text = tmp_path / "notes.txt"
    text.write_text("a seven\n")
    for bad in (svg, text):
        with pytest.raises(gr.Error) as refused:
            pad.preprocess(_pad_value(bad))
        assert refused.value.message == (f"{bad.name}: not a readable image (UnidentifiedImageError); "
                                         "the sketch pad takes a PNG or JPEG picture")


def test_a_plain_gradio_sketch_pad_still_fails_outside_gr_error_on_a_bad_upload(tmp_path):
    """Why app.sketch_pad wraps the pad's private decoding: Gradio's own pad raises PIL's error,
    which a visitor sees as a bare "Error". When this fails, Gradio handles it: drop the wrap."""
    import gradio as gr
    from PIL import UnidentifiedImageError

    text = tmp_path / "notes.png"
    text.write_text("not a picture\n")
    with pytest.raises(UnidentifiedImageError):
        gr.Sketchpad(type="numpy").preprocess(_pad_value(text))


def test_the_sketch_panel_offers_the_shipped_sketch_examples():
    import app

    config = app.build_demo().get_config_file()
    sketch_examples = [component["props"]["samples"] for component in config["components"]
                       if component["type"] == "dataset"
                       and component["props"]["component_props"][1]["label"].startswith("Sketch pad")]
    shipped = [Path(path) for name in ("digits-sketch", "fashion-sketch") for path in tryit.examples(name)]
    assert len(shipped) >= 2 and len(sketch_examples) == 1
    assert [pair for pair, _ in sketch_examples[0]] == [path.name.split("__")[0] for path in shipped]
    for (pair, value), path in zip(sketch_examples[0], shipped, strict=True):
        assert f"{pair}-example-" in str(value) and path.name not in str(value)  # no class in its name
    copies = [Path(copy) for name in ("digits-sketch", "fashion-sketch")
              for _, copy, _ in tryit.neutral_examples(name)]
    assert [copy.read_bytes() for copy in copies] == [path.read_bytes() for path in shipped]


def test_file_examples_show_a_thumbnail_and_an_upload_is_previewed_before_it_is_classified():
    from PIL import Image

    depth = tryit.neutral_examples("digits-depth")
    assert depth and all(preview and Image.open(preview).size == (140, 140) for _, _, preview in depth)
    assert all("__" not in Path(copy).name for _, copy, _ in depth)
    [npy] = [path for path in tryit.examples("digits-depth") if "__7__" in path and path.endswith(".npy")]
    assert Image.open(tryit.preview("digits-depth", npy)).mode == "RGB"
    assert tryit.preview("digits-depth", None) is None


def test_uploads_are_classified_and_bad_ones_refused(tmp_path):
    depth = [path for path in tryit.examples("digits-depth") if "__7__" in path and path.endswith(".npy")]
    speech = [path for path in tryit.examples("digits-audio") if "__3__" in path]
    depth_probs, *_ = tryit.look_up_upload("digits-depth", depth[0])
    speech_probs, *_ = tryit.look_up_upload("digits-audio", speech[0])
    assert max(depth_probs, key=depth_probs.get) == "7"
    assert max(speech_probs, key=speech_probs.get) == "3"
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"nonsense")
    with pytest.raises(InputError):
        tryit.look_up_upload("digits-depth", broken)
    with pytest.raises(InputError, match="upload a file first"):
        tryit.look_up_upload("digits-audio", None)


def test_the_page_builds_offline(no_network):
    import app

    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    demo = app.build_demo()
    assert demo.title == "CMCD" and no_network == []


def test_on_a_zerogpu_space_only_training_asks_for_a_gpu_for_as_long_as_it_needs(monkeypatch):
    import importlib
    import sys
    import types

    import app

    asked, wrapped = [], []

    def gpu(duration):
        def wrap(function):
            asked.append(duration)
            wrapped.append(function.__name__)
            function.on_gpu = True
            return function
        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    try:
        zero_gpu_app = importlib.reload(app)
        assert wrapped == ["train_on_gpu"] and zero_gpu_app.train_on_gpu.on_gpu
        assert not getattr(zero_gpu_app.run_distillation, "on_gpu", False)
        config = zero_gpu_app.distill_config("digits-sketch", "cmc", 5, 8000, 256, 0.3, 0, {})
        assert asked[0](config) == training.gpu_seconds(5, 8000)
    finally:
        monkeypatch.delitem(sys.modules, "spaces")
        importlib.reload(app)


def test_the_gpu_function_trains_and_the_run_is_evaluated_after_it():
    import pickle

    import app
    from cmcd.train.config import DistillConfig
    from cmcd.train.distill import TrainedStudent, distill, evaluate_student

    config = DistillConfig(pair="digits-depth", epochs=1, n_pairs=256, batch_size=128, width=8,
                           device="cpu")
    events = list(app.train_on_gpu(config))
    assert [e["kind"] for e in events][-1] == "trained"
    assert any(e["kind"] == "step" and "left" in training.training_status(config, e) for e in events)
    trained = pickle.loads(pickle.dumps(events[-1]["trained"]))  # what a ZeroGPU worker sends back
    assert isinstance(trained, TrainedStudent)
    assert all(value.device.type == "cpu" for value in trained.student_state.values())
    run = evaluate_student(trained)
    assert run.metrics["zero_label_acc"] == distill(config).metrics["zero_label_acc"]


def _benchmarked(pair: str) -> dict[str, dict[str, int]]:
    """Seeds per method of the paper benchmark's students of `pair`, by teacher."""
    import json

    paper = json.loads((paths.results_dir() / "paper.json").read_text())
    found: dict[str, dict[str, int]] = {}
    for run in paper["runs"]:
        config = run["config"]
        if run["study"] in ("main", "ablation") and config["pair"] == pair:
            methods = found.setdefault(config["teacher"], {})
            methods[config["method"]] = methods.get(config["method"], 0) + 1
    return found


def test_compare_table_holds_this_sessions_runs_and_the_benchmark_of_their_teacher():
    benchmarked = _benchmarked("digits-depth")
    assert set(benchmarked) == {"ft", "ssl"}
    rows = compare.compare_rows("digits-depth")  # no run of the session: both teachers, named
    assert [row[0] for row in rows] == [f"benchmark: {m}, teacher {t} ({benchmarked[t][m]} seeds)"
                                        for t in ("ft", "ssl") for m in ui_order(benchmarked[t])]
    assert all(len(row) == len(compare.COMPARE_COLUMNS) for row in rows)

    metrics = {"teacher": "ft", "zero_label_acc": {"head": 0.9, "prototype": 0.8},
               "few_label_acc": {"1": 0.5, "10": 0.7},
               "retrieval": {"target_to_source": {"r1": 0.1}, "source_to_target": {"r1": 0.2}},
               "tv_distance": 1.0, "tv_distance_head": 0.1}
    mine = {"pair": "digits-depth", "label": "cmc, 512 pairs, teacher ft", "seed": 3, "metrics": metrics,
            "untrained": {**metrics, "zero_label_acc": {"head": 0.1, "prototype": 0.1}}}
    other_pair = {**mine, "pair": "digits-sketch"}
    rows = compare.compare_rows("digits-depth", [mine, other_pair])
    # every column: head, prototype, 1 and 10 labels, R@1 both ways, TV of embeddings and head
    assert rows[0] == ["your run: cmc, 512 pairs, teacher ft", 0.9, 0.8, 0.5, 0.7, 0.1, 0.2, 1.0, 0.1]
    assert rows[1] == ["the same student untrained (seed 3, teacher ft)",
                       0.1, 0.1, 0.5, 0.7, 0.1, 0.2, 1.0, 0.1]
    assert len(rows) == 2 + len(benchmarked["ft"])
    # like with like: no benchmark row of another teacher than the run's, and none unlabelled
    assert all(", teacher ft (" in row[0] for row in rows[2:])


def test_compare_gives_the_supervised_reference_its_own_accuracy_not_a_teacher_head_figure():
    import json

    rows = compare.compare_rows("digits-sketch")
    [supervised] = [row for row in rows if row[0].startswith("benchmark: supervised, teacher ssl")]
    paper = json.loads((paths.results_dir() / "paper.json").read_text())
    own = [r["metrics"]["accuracy"] for r in paper["runs"] if r["study"] == "main"
           and r["config"]["pair"] == "digits-sketch" and r["config"]["method"] == "supervised"]
    head = compare.COMPARE_COLUMNS.index("zero-label head")
    assert supervised[head] == f"{np.mean(own):.3f} ± {np.std(own, ddof=1):.3f} (its own head)"
    for metric in records.TEACHER_SPACE:
        assert supervised[compare.COMPARE_COLUMNS.index(metric.heading)] == "n/a"


def test_compare_benchmark_rows_are_mean_and_std_over_the_seeds_of_the_main_study(tmp_path, monkeypatch):
    def run(pair, seed, head, r1, study="main"):
        metrics = {"zero_label_acc": {"head": head, "prototype": 0.7}, "few_label_acc": {"1": 0.5, "10": 0.6},
                   "retrieval": {"target_to_source": {"r1": r1}, "source_to_target": {"r1": 0.25}},
                   "tv_distance": 0.5, "tv_distance_head": 0.25}
        teacher = "ssl" if study == "main" else "ft"
        return {"study": study, "config": {"pair": pair, "method": "cmc", "seed": seed, "teacher": teacher},
                "metrics": metrics}

    runs = [run("digits-depth", 0, 0.8, 0.1), run("digits-depth", 1, 0.9, 0.3),
            run("digits-sketch", 0, 0.1, 0.1), run("digits-depth", 2, 0.1, 0.1, study="ablation")]
    (tmp_path / "paper.json").write_text(json.dumps({"runs": runs}))
    monkeypatch.setenv("CMCD_RESULTS", str(tmp_path))
    mine = {"pair": "digits-depth", "label": "cmc", "seed": 0, "untrained": runs[2]["metrics"],
            "metrics": {**runs[0]["metrics"], "teacher": "ssl"}}
    # mean ± sample standard deviation: 0.85 ± 0.0707 and 0.2 ± 0.1414, the rest constant; the
    # ablation's ft-teacher run is not the session run's teacher, so it has no row
    assert compare.compare_rows("digits-depth", [mine])[2:] == [[
        "benchmark: cmc, teacher ssl (2 seeds)", "0.850 ± 0.071", "0.700 ± 0.000", "0.500 ± 0.000",
        "0.600 ± 0.000", "0.200 ± 0.141", "0.250 ± 0.000", "0.500 ± 0.000", "0.250 ± 0.000"]]


def ui_order(methods):
    from cmcd.train.objectives import METHODS

    return [m for m in METHODS if m in methods]


def test_untrained_student_is_measured_like_any_run():
    metrics = training.untrained_metrics("digits-depth", 0, 8, "cpu")
    assert metrics["method"] == "random" and metrics["steps"] == 0
    assert metrics["zero_label_acc"]["head"] < 0.3


def test_retrieval_marks_its_own_pair_and_its_class():
    found = shipped.shipped_test_embeddings("digits-depth")
    items, summary = explore.retrieve("digits-depth", 123, "target→source", k=6)
    assert len(items) == 6 and all(image.size == (shipped.THUMBNAIL, shipped.THUMBNAIL) for image, _ in items)
    name = found["class_names"][found["labels"][123]]
    for _, caption in items:
        assert caption.startswith("✓") == (name in caption) or "its own pair" in caption
    assert f"a {name} (depth)" in summary
    _, back = explore.retrieve("digits-audio", 0, "source→target", k=4)
    assert "same class" in back  # audio pairs are class pairs
    with pytest.raises(InputError, match="test item"):
        explore.retrieve("digits-depth", 5000, "target→source")


def test_own_input_finds_photos_of_its_class():
    probs, photos, *_ = tryit.look_up_drawing("digits-sketch", {"composite": _drawn_one(False)})
    assert max(probs, key=probs.get) == "1"
    assert len(photos) == 5 and [caption for _, caption in photos].count("1") >= 3


def test_gallery_pictures_are_files_written_once_and_whole():
    """Galleries get PNG files of ours (Gradio rewrites in place the files it makes of PIL images,
    which cut concurrent downloads short); the same picture is one file, written once."""
    from concurrent.futures import ThreadPoolExecutor

    _, photos, *_ = tryit.look_up_drawing("digits-sketch", {"composite": _drawn_one(False)})
    for path, _ in photos:
        with Image.open(path) as image:
            image.load()
            assert image.size == (shipped.THUMBNAIL, shipped.THUMBNAIL)
    image = shipped.picture("digits-depth", 7, "source")
    first = Path(shipped.picture_file(image))
    written = first.stat()
    with ThreadPoolExecutor(8) as pool:
        paths = set(pool.map(lambda _: shipped.picture_file(image), range(32)))
    assert paths == {str(first)} and first.stat().st_ino == written.st_ino  # not rewritten
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(image))


def test_pair_strip_shows_photos_over_targets():
    strip = explore.pair_strip("digits-audio", count=4)
    assert strip.size == (4 * (shipped.THUMBNAIL + 4), 2 * shipped.THUMBNAIL + 4)


def test_theory_tab_reads_the_benchmark(tmp_path, monkeypatch, made_up_theory_report):
    monkeypatch.setenv("CMCD_RESULTS", str(tmp_path))
    assert "Run `cmcd bench theory`" in compare.theory_text() and compare.theory_figure() is None
    (tmp_path / "theory.json").write_text(json.dumps({"summary": {"tv_distance": {}}}))
    assert "predates the calibrated TV" in compare.theory_text() and compare.theory_figure() is None
    (tmp_path / "theory.json").write_text(json.dumps(made_up_theory_report))
    figure = compare.theory_figure()
    assert figure is not None and len(figure.data) == 4 * 3 + 1  # 4 arms in 2 pairs and the bound, a line
    text = compare.theory_text()
    assert "Spearman" in text and "excluding 0: yes" in text and "No student breaks the bound" in text


def test_gpu_time_asked_for_grows_with_the_run_and_is_capped():
    assert training.gpu_seconds(5, 8000) < training.gpu_seconds(20, 10_000) <= 300


def test_alignment_map_has_both_modalities_for_every_class_and_caches_coordinates():
    from cmcd.viz import maps as visualise

    figure = explore.alignment_plot("digits-depth", "pca", True, points=300)
    assert not figure.layout.images
    traces = [trace for trace in figure.data if trace.mode == "markers"]
    assert len(traces) == 20  # 10 classes x (teacher, student)
    sizes = [len(trace.x) for trace in traces]  # 300 items spread over the test split, each twice
    assert sum(sizes) == 2 * 300 and sizes[0::2] == sizes[1::2] and min(sizes) >= 20
    assert any(trace.mode == "lines" for trace in figure.data)
    found = shipped.shipped_test_embeddings("digits-depth")
    teacher, student = found["teacher"][:300], found["student"][:300]
    before = set((paths.cache_dir() / "coordinates").glob("*.safetensors"))
    first = visualise.coordinates(teacher, student, "pca")
    written = set((paths.cache_dir() / "coordinates").glob("*.safetensors")) - before
    assert len(written) == 1
    assert np.array_equal(first, visualise.coordinates(teacher, student, "pca"))


def test_thumbnails_are_drawn_in_the_map():
    figure = explore.alignment_plot("digits-depth", "pca", False, True, points=300)
    assert len(figure.layout.images) == 40  # two items per class, each as photo and as target
    assert all(image.source.startswith("data:image/png;base64,") for image in figure.layout.images)


def test_the_app_shows_pca_while_umap_is_still_compiling(monkeypatch):
    from cmcd.viz import maps as visualise

    monkeypatch.setattr(visualise, "umap_is_warm", lambda: False)
    monkeypatch.setattr(visualise, "_umap", lambda *args: pytest.fail("UMAP fitted while cold"))
    monkeypatch.setattr(visualise, "warm_up_umap_in_background", lambda: None)
    figure = explore.alignment_plot("digits-depth", "umap", False, points=120, pca_while_umap_warms=True)
    assert "PCA (UMAP is still warming up" in figure.layout.title.text


def test_umap_map_on_a_few_hundred_points():
    figure = explore.alignment_plot("digits-sketch", "umap", False, points=200)
    xs = np.concatenate([trace.x for trace in figure.data if trace.mode == "markers"])
    assert len(xs) == 400 and np.isfinite(xs).all() and np.ptp(xs) > 0


def test_live_distillation_streams_progress_and_can_be_cancelled():
    import threading

    from cmcd.train.config import DistillConfig

    config = DistillConfig(pair="digits-sketch", epochs=2, n_pairs=512, batch_size=128, width=8,
                           device="cpu")
    stream = training.distill_events(config, threading.Event())
    events = []
    try:
        while True:
            events.append(next(stream))
    except StopIteration as finished:
        run = finished.value
    assert [e["epoch"] for e in events if e["kind"] == "epoch"] == [1, 2]
    assert run.metrics["n_pairs"] == 512 and not run.cancelled
    figure = training.training_curves(events)
    assert len(figure.data) == 3
    assert dict(training.metrics_rows(run.metrics))["zero-label accuracy, teacher head"] == \
        run.metrics["zero_label_acc"]["head"]

    stop = threading.Event()
    stop.set()
    cancelled = training.distill_events(DistillConfig(pair="digits-sketch", epochs=3, n_pairs=512,
                                                batch_size=128, width=8, device="cpu"), stop)
    try:
        while True:
            next(cancelled)
    except StopIteration as finished:
        assert finished.value.cancelled and len(finished.value.history) <= 1


def test_closing_the_distillation_stops_training_within_two_steps_and_the_next_run_works(monkeypatch):
    """What the Cancel button does: Gradio closes the handler's generator. The worker must stop
    at its next step (not train on in the background) and the next run must work."""
    import threading

    import app

    polls, workers = [], []
    real_train_student = training.train_student

    def counted(config, progress, should_stop):
        workers.append(threading.current_thread())

        def polled():  # the loop asks after every step
            polls.append(1)
            return should_stop()

        return real_train_student(config, progress=progress, should_stop=polled)

    monkeypatch.setattr(training, "train_student", counted)
    handler = app.run_distillation("digits-sketch", "cmc", 20, 512, 64, 0.3, 0, [])
    for status, *_ in handler:
        if status.startswith("Training") and len(polls) >= 3:
            break
    handler.close()
    steps_when_closed = len(polls)
    workers[0].join(timeout=30)
    assert not workers[0].is_alive(), f"still training {len(polls) - steps_when_closed} steps after Cancel"
    assert len(polls) - steps_when_closed <= 2 and len(polls) < 20 * 8

    *_, (status, _, table, _, session_runs) = app.run_distillation("digits-sketch", "cmc", 1, 128, 64,
                                                                   0.3, 0, [])
    assert status.startswith("Done on cpu") and len(session_runs) == 1
    [kept] = your_runs.compare_view(session_runs)[0]  # the run the session keeps, by its id
    assert dict(table)["zero-label accuracy, teacher head"] == kept["metrics"]["zero_label_acc"]["head"]


def test_the_cancel_button_cancels_the_distillation():
    import app

    config = app.build_demo().get_config_file()
    buttons = {component["id"]: component["props"].get("value") for component in config["components"]
               if component["type"] == "button"}
    # the Distill button's click (API and MCP clients have a tool of their own, without Cancel)
    [distill] = [d for d in config["dependencies"]
                 if [buttons.get(target) for target, event in d["targets"]] == ["Distill"]]
    cancelling = [d for d in config["dependencies"] if distill["id"] in d.get("cancels", [])]
    assert [buttons[d["targets"][0][0]] for d in cancelling] == ["Cancel"]


def test_latency_benchmark_times_each_modality_through_the_app_handlers():
    from cmcd.bench import app as bench_app

    for pair in bench_app.timed_pairs():
        row = bench_app.classify_latency(pair, repeats=3)
        assert row["calls"] == 3 and 0 < row["p50_ms"] <= row["p95_ms"]
    assert bench_app.format_report({"startup_s": 1.0, "cpu_count": 2, "classify": {
        "digits-depth": {"p50_ms": 1.0, "p95_ms": 2.0, "calls": 3}}}).startswith("app start-up")


def test_the_cold_start_benchmark_reads_the_first_spoken_digit_from_a_served_app():
    """`cmcd bench app`'s cold start: `python app.py` with an empty cache, the shipped spoken
    seven through /classify_audio (whose answer is one JSON text)."""
    from cmcd.bench import app as bench_app

    cold = bench_app.cold_start_seconds()
    assert cold["label"] == "7" and cold["example"].startswith("digits-audio__7__")
    assert 0 < cold["page_s"] <= cold["first_answer_s"]


def test_the_app_reads_results_without_the_benchmarks_and_the_library_without_either():
    import subprocess
    import sys

    def imported(modules: str) -> list[str]:
        code = (f"import sys, {modules}; print(' '.join(m for m in sys.modules "
                "if m.startswith(('cmcd.bench', 'cmcd.viz', 'cmcd.app'))))")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout.split()

    app_modules = imported("cmcd.app.compare, cmcd.app.explore, cmcd.app.training, cmcd.app.tryit")
    assert "cmcd.app.compare" in app_modules
    assert not [m for m in app_modules if m.startswith("cmcd.bench")]
    assert imported("cmcd.train.distill, cmcd.train.run_files, cmcd.eval.classify, "
                    "cmcd.eval.results, cmcd.models.teacher") == []


def test_try_it_has_one_panel_per_target_modality_from_the_registry():
    panels = {modality.name: names for modality, names in tryit.try_it_panels()}
    assert panels == {"sketch": ["digits-sketch", "fashion-sketch"],
                      "depth": ["digits-depth", "fashion-depth"], "audio": ["digits-audio"]}
    from cmcd.bench import app as bench_app

    assert bench_app.timed_pairs() == ["digits-sketch", "digits-depth", "digits-audio"]


def test_a_session_keeps_a_small_summary_of_each_run_with_its_loss_options():
    import json
    from types import SimpleNamespace

    from cmcd.app import training
    from cmcd.train.config import DistillConfig

    run = SimpleNamespace(config=DistillConfig(method="cmd", seed=3),
                          metrics={"n_pairs": 8000, "steps": 155, "zero_label_acc": {"head": 0.9}})
    summary = training.session_summary(run, {"zero_label_acc": {"head": 0.1}})
    assert "teacher_temperature 0.1" in summary["label"] and "seed 3, teacher ft" in summary["label"]
    assert summary["pair"] == "digits-sketch" and json.loads(json.dumps(summary)) == summary


def test_shipped_test_items_are_what_building_the_pair_gives():
    """The app answers from cmcd/shipped/app without building pairs; what it ships must be what
    it would build (scripts/ship_app_items.py writes the file)."""
    import torch

    assert shipped.items_file().exists()
    found = shipped.shipped_test_embeddings("digits-depth")
    assert found["origin"] == "shipped" and len(found["labels"]) == shipped.APP_ITEMS
    built = shipped.build_test_items("digits-depth")
    assert np.array_equal(found["ids"], built["ids"]) and np.array_equal(found["labels"], built["labels"])
    assert torch.allclose(found["targets"], built["targets"], atol=1 / 255)
    assert np.allclose(found["teacher"], built["teacher"], atol=2e-3)
    assert np.allclose(found["student"], built["student"], atol=5e-3)
    test = shipped.built_pair("digits-depth").test
    built_photos = test.source[torch.from_numpy(shipped.spread(len(test), shipped.APP_ITEMS))]
    assert torch.equal(shipped.item_photos("digits-depth"), built_photos)
    assert set(found["coordinates"]) == {"umap", "pca"}
    assert found["coordinates"]["umap"].shape == (2 * shipped.APP_ITEMS, 2)


def test_items_made_for_another_student_are_built_instead(tmp_path, monkeypatch):
    other = tmp_path / "test-items.safetensors"
    shipped.write_items_file(other, {"digits-depth": shipped.read_shipped_items("digits-depth")})
    assert shipped.read_shipped_items("digits-depth", other) is not None
    assert shipped.read_shipped_items("digits-sketch", other) is None  # not in that file
    monkeypatch.setattr(shipped, "student_digest", lambda pair: "another student")
    assert shipped.read_shipped_items("digits-depth", other) is None
    assert shipped.read_shipped_items("digits-depth", tmp_path / "missing.safetensors") is None


def test_the_full_shipped_map_needs_no_umap():
    from cmcd.viz import maps as visualise

    found = shipped.shipped_test_embeddings("digits-audio")
    figure = explore.alignment_plot("digits-audio", "umap", False, pca_while_umap_warms=True)
    assert figure.layout.title.text.endswith("UMAP")
    xs = np.concatenate([trace.x for trace in figure.data if trace.mode == "markers"])
    assert len(xs) == 2 * shipped.APP_ITEMS
    assert not visualise.is_cached(found["teacher"], found["student"], "umap")  # never computed


def test_once_per_key_builds_once_however_many_ask_at_once():
    import threading
    import time

    from cmcd.app.once import once_per_key

    calls = []

    @once_per_key
    def slow(key):
        calls.append(key)
        time.sleep(0.2)
        return key * 2

    results = []
    threads = [threading.Thread(target=lambda k=k: results.append(slow(k % 2))) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(calls) == [0, 1] and sorted(results) == [0, 0, 0, 2, 2, 2]


def test_an_unexpected_error_in_any_handler_is_one_logged_sentence_never_a_bare_error(caplog):
    import gradio as gr

    import app
    from cmcd.modalities.audio.voices import SpeechEnginesMissing

    def broken(pair):
        raise KeyError(pair)

    def broken_stream(pair):
        yield "started"
        raise ZeroDivisionError

    with pytest.raises(gr.Error) as refused:
        app.visitor_errors(broken)("digits-sketch")
    assert refused.value.message.startswith("broken failed on the server (KeyError); it is in the")
    assert "broken failed" in caplog.text and "KeyError" in caplog.text
    stream = app.visitor_errors(broken_stream)("digits-sketch")
    assert next(stream) == "started"
    with pytest.raises(gr.Error, match=r"broken_stream failed on the server \(ZeroDivisionError\)"):
        next(stream)
    with pytest.raises(gr.Error, match="a Space needs them in its packages.txt") as refused:
        app.visitor_errors(lambda: (_ for _ in ()).throw(SpeechEnginesMissing(
            "the spoken-digit bank needs ... (a Space needs them in its packages.txt)")))()
    demo = app.build_demo()
    handlers = [block_fn.fn for block_fn in demo.fns.values() if block_fn.fn is not None]
    assert handlers and all(hasattr(handler, "__wrapped__") for handler in handlers)
    every, older_than = demo.delete_cache  # Gradio's cleanup of uploads and outputs is on
    assert 0 < every <= older_than <= 86400


def test_spaces_is_imported_before_torch(tmp_path):
    """The `spaces` package asks to be imported first on a ZeroGPU Space: a stand-in records
    whether torch was already loaded when the app imported it."""
    import subprocess
    import sys

    (tmp_path / "spaces.py").write_text(
        "import sys\n"
        "TORCH_BEFORE = 'torch' in sys.modules\n"
        "def GPU(duration=60):\n"
        "    return lambda function: function\n")
    root = Path(__file__).resolve().parent.parent
    check = "import app\nimport spaces\nprint(spaces.TORCH_BEFORE, app.spaces is spaces)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    result = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True,
                            cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("pair", ["digits-sketch", "fashion-sketch", "digits-depth", "fashion-depth",
                                  "digits-audio"])
def test_the_classify_tools_answer_compact_json(pair):
    from cmcd.app import tools

    [example] = [path for path in tryit.examples(pair) if not path.endswith(".png") or "sketch" in pair][:1]
    answer = json.loads(tools.classify_answer(pair, example))
    expected = Path(example).name.split("__")[1]
    assert answer["pair"] == pair and answer["label"] == answer["top_classes"][0]["class"]
    assert (answer["label"] == expected) or answer["unsure"], (answer, expected)
    assert [set(item) for item in answer["nearest_test_items"]] == [{"test_item", "class", "similarity"}] * 5
    with pytest.raises(InputError, match="give a file"):
        tools.classify_answer(pair, None)


@pytest.mark.parametrize("change, sentence", [
    ({"seed": -1}, "seed (-1) must be at least 0"),
    ({"epochs": 50}, "epochs (50) must be at most 20"),
    ({"batch_size": 100.5}, "batch_size (100.5) must be an integer from 64 to 512"),
    ({"n_pairs": "many"}, "n_pairs ('many') must be an integer from 100 to 10,000"),
    ({"method": "magic"}, "method ('magic') must be one of cmc, cmd"),
    ({"temperature": 0.0}, "temperature (0.0) must be at least 0.05"),
])
def test_run_distillation_refuses_a_setting_in_one_sentence_before_anything_loads(change, sentence):
    from cmcd.app import tools

    settings = {"epochs": 1, "n_pairs": 256, "batch_size": 128, "temperature": 0.3, "seed": 0, **change}
    with pytest.raises(InputError) as refused:
        tools.tool_config("digits-depth", change.get("method", "l2"), settings, {})
    assert str(refused.value).startswith(sentence)
