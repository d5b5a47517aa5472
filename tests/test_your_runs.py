"""A visitor's own students: the server's bounded run store, and the app's path from a finished
run to Try it (with calibration), the zip, Compare, and an expired run."""

import os
import threading
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from cmcd.app import tryit
from cmcd.app.run_store import SUMMARY, RunExpired, RunStore


def _writer(size: int):
    def write(folder):
        folder.mkdir(parents=True)
        (folder / "student.safetensors").write_bytes(b"x" * size)
    return write


def test_the_store_keeps_the_newest_runs_within_its_count_and_byte_limits(tmp_path):
    store = RunStore(tmp_path, max_runs=3, max_bytes=10_000)
    ids = [store.add(_writer(1_000), {"pair": "digits-sketch", "n": n}) for n in range(5)]
    held, expired = store.summaries(ids)
    assert [run["n"] for run in held] == [2, 3, 4] and expired == ids[:2]
    store.add(_writer(8_000), {"pair": "digits-sketch", "n": 5})  # over the byte limit: oldest go
    usage = store.usage()
    assert usage["runs"] == 2 and 9_000 < usage["bytes"] <= 10_000
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_an_old_run_expires_and_an_unknown_or_malformed_id_says_so(tmp_path):
    store = RunStore(tmp_path, max_age_s=3600)
    old, new = store.add(_writer(10), {"pair": "x"}), None
    past = time.time() - 7200
    os.utime(tmp_path / old / SUMMARY, (past, past))
    new = store.add(_writer(10), {"pair": "x"})  # adding prunes
    assert store.summary(new)["run_id"] == new
    for gone in (old, "0" * 32, "../" + new, ""):
        with pytest.raises(RunExpired, match="expired"):
            store.folder(gone)


def test_a_restarted_store_finds_the_runs_on_disk_and_concurrent_adds_stay_bounded(tmp_path):
    store = RunStore(tmp_path, max_runs=4)
    ids, errors = [], []

    def visitor(n):
        try:
            ids.append(store.add(_writer(100), {"pair": "x", "n": n}))
        except Exception as error:  # any failure fails the test below
            errors.append(error)

    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and RunStore(tmp_path, max_runs=4).usage()["runs"] == 4  # a new process
    held, expired = RunStore(tmp_path).summaries(ids)
    assert len(held) == 4 and len(expired) == 8


@pytest.fixture
def app_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CMCD_STUDENTS", str(tmp_path / "checkpoints"))
    return tmp_path / "checkpoints" / "app-runs"


def test_a_finished_run_is_tried_downloaded_compared_and_then_expires(app_store):
    import gradio as gr

    import app
    from cmcd.app import your_runs

    updates = list(app.run_distillation("digits-sketch", "cmc", 1, 300, 64, 0.3, 0, ["0" * 32]))
    run_ids = updates[-1][-1]
    assert run_ids[0] == "0" * 32 and len(run_ids) == 2 and (app_store / run_ids[1]).is_dir()
    mine = run_ids[1]
    metadata = your_runs.run_classifier(mine)[1].metadata
    assert metadata["calibration"]["temperature"] > 0  # fitted on validation, as distill --out does
    choices = your_runs.student_choices(run_ids, ["digits-sketch", "fashion-sketch"])
    assert [value for _, value in choices] == [your_runs.SHIPPED, mine]
    assert your_runs.student_choices(run_ids, ["digits-depth"]) == choices[:1]
    seven = np.array(Image.open(next(path for path in tryit.examples("digits-sketch") if "__7__" in path)))
    probs, photos, verdict, answer = your_runs.look_up_drawing("digits-sketch", mine, seven)
    assert set(probs) == {str(d) for d in range(10)} and len(photos) == 5 and answer["label"] in probs
    with zipfile.ZipFile(app.latest_bundle(run_ids)["value"]) as bundle:
        assert "student.onnx" in bundle.namelist()
    rows, note = app.compare_view("digits-sketch", run_ids)
    assert rows[0][0].startswith("your run: cmc") and "1 of your earlier runs expired" in note
    your_runs.store().max_age_s = 0  # the next add prunes every older run
    your_runs.store().add(_writer(10), {"pair": "digits-sketch"})
    with pytest.raises(gr.Error, match="expired"):
        app.friendly(your_runs.look_up_drawing)("digits-sketch", mine, seven)


def test_the_alignment_search_greys_the_other_points_and_the_export_loads():
    import pyarrow.parquet as pq

    from cmcd.app import explore
    from cmcd.data.inputs import InputError

    figure = explore.alignment_plot("digits-depth", "pca", False, query="7, 3")
    markers = [trace for trace in figure.data if trace.mode == "markers"]
    assert sum(len(trace.x) for trace in markers) == 1000  # greyed, not hidden
    coloured = {trace.name.split(":")[0] for trace in markers
                if not any("170,170,170" in str(colour) for colour in trace.marker.color)}
    assert coloured == {"3", "7"}
    items = explore.alignment_plot("digits-depth", "pca", False, query="#12, #40")
    assert sum(colour != "rgba(170,170,170,0.25)" for trace in items.data if trace.mode == "markers"
               for colour in trace.marker.color) == 4  # two items, each a photo and a depth map
    with pytest.raises(InputError, match="neither a class"):
        explore.alignment_plot("digits-depth", "pca", False, query="seven")
    parquet, vectors, metadata = explore.export_embeddings("digits-depth")
    table = pq.read_table(parquet)
    assert table.num_rows == 1000 and {"umap_x", "umap_y", "pca_x", "pca_y"} <= set(table.column_names)
    assert len(open(vectors).read().splitlines()) == 1000 == len(open(metadata).read().splitlines()) - 1
