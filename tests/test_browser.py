"""The app as a visitor meets it: served on localhost, driven through gradio_client and in a real
browser (Debian's chromium through Playwright, no browser download)."""

import contextlib
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served_app(**env_vars):
    """`python app.py` on a free port of localhost, with `env_vars` added to its environment;
    yields its URL once it serves its page."""
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           **env_vars}
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"app-server-{port}.log"  # a file, not a pipe nobody drains (which can block)
    with open(log, "wb") as server_log:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=server_log)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"app.py exited: {log.read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("app.py did not serve its page within 120 s")
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with served_app(CMCD_STUDENTS=str(tmp_path_factory.mktemp("students"))) as url:  # the app's runs
        yield url


@pytest.fixture(scope="module")
def chromium(require):
    """Debian chromium's launcher, driven by Playwright (no browser download); without chromium
    the tests skip, or under CI=true fail."""
    require("chromium")
    import playwright.sync_api as playwright  # a test dependency: its absence is an error
    with playwright.sync_playwright() as p:
        ARTIFACTS.mkdir(exist_ok=True)
        yield p.chromium


@pytest.fixture(scope="module")
def browser(chromium):
    """One browser for the module: each visitor's page has a browser context of its own."""
    browser = chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


def open_app(browser, app_url):
    """A new visitor: a page of its own (a browser session of its own) on the app."""
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(app_url)
    page.wait_for_selector("text=Draw a sketch", timeout=60_000)
    return page


def shown(page, text):
    """Visible elements holding `text` (Gradio's tables keep hidden copies of their cells)."""
    return page.get_by_text(text).filter(visible=True)


@pytest.fixture
def page(browser, app_url):
    return open_app(browser, app_url)


def test_gradio_client_classifies_a_depth_map_and_a_spoken_digit(app_url):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    examples = ROOT / "cmcd" / "shipped" / "examples"
    depth = client.predict("digits-depth", handle_file(examples / "digits-depth__3__test3147.npy"),
                           api_name="/classify_depth")
    speech = client.predict("digits-audio", handle_file(examples / "digits-audio__7__testvoice7017.wav"),
                            api_name="/classify_audio")
    depth, speech = json.loads(depth), json.loads(speech)  # compact JSON answers
    assert depth["label"] == "3" and speech["label"] == "7"
    assert len(depth["nearest_test_items"]) == 5  # and the nearest test items, by number


def _length(array) -> int:
    """Points in a plotly JSON array: a list, or numpy data as {"dtype", "bdata": base64}."""
    if isinstance(array, list):
        return len(array)
    import base64

    import numpy as np

    return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).size


def test_gradio_client_fetches_the_alignment_map_and_retrieval(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    deadline = time.monotonic() + 120  # UMAP compiles in the background after start-up
    while True:
        plot = json.loads(client.predict("digits-sketch", "umap", False, False,
                                         api_name="/alignment")["plot"])
        if plot["layout"]["title"]["text"].endswith("UMAP") or time.monotonic() > deadline:
            break
        assert "warming up" in plot["layout"]["title"]["text"]  # PCA meanwhile
        time.sleep(3)
    assert plot["layout"]["title"]["text"].endswith("UMAP")
    markers = [trace for trace in plot["data"] if trace.get("mode") == "markers"]
    assert len(markers) == 20 and sum(_length(trace["x"]) for trace in markers) == 1000
    _, gallery, summary = client.predict("digits-depth", "target→source", 7, 4, api_name="/retrieve")
    assert len(gallery) == 4 and "retrieved photos are right" in summary


def test_concurrent_visitors_download_every_gallery_picture_whole(app_url):
    """Several clients ask for the same retrieval and look-up at once (the same pictures), and
    download every gallery picture: each file arrives whole and decodes."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file
    from PIL import Image

    example = ROOT / "cmcd" / "shipped" / "examples" / "digits-depth__3__test3147.npy"

    def visit(_):
        client = Client(app_url, verbose=False)
        files = []
        for _ in range(3):
            _, gallery, _ = client.predict("digits-depth", "target→source", 7, 16, api_name="/retrieve")
            answer = client.predict("digits-depth", handle_file(example), api_name="/classify_depth")
            assert json.loads(answer)["label"] == "3"
            files += [item["image"] for item in gallery]
        return files

    with ThreadPoolExecutor(6) as pool:
        downloaded = [path for files in pool.map(visit, range(6)) for path in files]
    assert len(downloaded) == 6 * 3 * 16
    for path in downloaded:
        with Image.open(path) as picture:
            picture.load()  # a file cut short fails here
            assert picture.size == (96, 96)


def _draw_on_the_pad(page, points):
    """One stroke through `points` (shares of the pad's drawing area), with the mouse."""
    page.get_by_role("button", name="Brush").first.click()
    box = page.locator("canvas").first.bounding_box()
    side = min(box["width"], box["height"]) * 0.7
    left, top = box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2
    corners = [(left + u * side, top + v * side) for u, v in points]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in itertools.pairwise(corners):
        for i in range(1, 16):
            page.mouse.move(x0 + (x1 - x0) * i / 15, y0 + (y1 - y0) * i / 15)
    page.mouse.up()


def test_drawing_a_seven_in_the_browser(page):
    _draw_on_the_pad(page, ((0.25, 0.2), (0.75, 0.2), (0.4, 0.85)))
    page.get_by_role("button", name="Classify", exact=True).first.click()
    label = page.locator('[data-testid="label-output-value"]').first
    label.wait_for(timeout=120_000)  # the first look-up may wait for the data build
    assert label.inner_text().strip() == "7"
    verdict = page.get_by_role("heading", name=re.compile(r"^7 \(\d+ %\)$")).filter(visible=True)
    verdict.first.wait_for(timeout=30_000)  # "7 (NN %)", not "Not sure — closest: 7 (NN %)"
    photos = page.locator("img").filter(visible=True)
    page.wait_for_function("() => [...document.images].every(image => image.complete)")
    assert photos.count() >= 5  # the nearest test photos
    page.screenshot(path=str(ARTIFACTS / "app-drawn-seven.png"))


@pytest.mark.parametrize("corners", [((0.3, 0.1), (0.3, 0.9), (0.75, 0.9)),  # a tall L
                                     ((0.2, 0.3), (0.22, 0.75), (0.85, 0.72))],  # a squat, wide one
                         ids=["tall-L", "wide-L"])
def test_a_drawn_letter_is_not_sure_in_the_browser(page, corners):
    _draw_on_the_pad(page, corners)
    page.get_by_role("button", name="Classify", exact=True).first.click()
    verdict = page.get_by_role("heading", name=re.compile(r"^Not sure — closest: \d \(\d+ %\)$"))
    verdict.filter(visible=True).first.wait_for(timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "app-not-sure.png"))


def _microphone_file(path: Path) -> Path:
    """What the fake microphone hears: a shipped test voice saying 7, with silence around it, as
    the 16-bit 48 kHz WAV Chromium's fake capture device plays."""
    import numpy as np
    import soundfile
    import torch
    import torchaudio.functional as AF

    example = ROOT / "cmcd" / "shipped" / "examples" / "digits-audio__7__testvoice7017.wav"
    spoken, rate = soundfile.read(example, dtype="float32", always_2d=True)
    wave = AF.resample(torch.from_numpy(spoken.mean(1)), rate, 48000).numpy()
    before, after = np.zeros(48000 // 2, dtype=np.float32), np.zeros(2 * 48000, dtype=np.float32)
    soundfile.write(path, np.concatenate([before, 0.8 * wave / np.abs(wave).max(), after]), 48000,
                    subtype="PCM_16")
    return path


def test_a_digit_spoken_into_the_microphone_in_the_browser(app_url, tmp_path, chromium):
    """Record -> Stop -> Classify, as a visitor does, through Chromium's fake microphone."""
    import playwright.sync_api as playwright
    spoken = _microphone_file(tmp_path / "seven.wav")
    flags = CHROMIUM_FLAGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-audio-capture={spoken}"]
    browser = chromium.launch(executable_path=CHROMIUM, args=flags)
    try:
        page = open_app(browser, app_url)
        page.get_by_role("button", name="Record").first.click()
        page.get_by_role("button", name="Stop").first.wait_for(timeout=30_000)
        time.sleep(3)  # the digit and the silence after it
        page.get_by_role("button", name="Stop").first.click()
        verdict = page.get_by_role("heading", name=re.compile(r"\d \(\d+ %\)$")).filter(visible=True)
        try:  # the recording uploads after Stop: until it has, Classify says "upload a file first"
            for _ in range(6):
                page.get_by_role("button", name="Classify", exact=True).nth(2).click()  # the recorder's
                with contextlib.suppress(playwright.TimeoutError):
                    verdict.first.wait_for(timeout=30_000)
                    break
            verdict.first.wait_for(timeout=1_000)
        finally:
            page.screenshot(path=str(ARTIFACTS / "app-microphone-seven.png"), full_page=True)
        # "7 (NN %)", not "Not sure — closest: 7 (NN %)"
        assert re.fullmatch(r"7 \(\d+ %\)", verdict.first.inner_text().strip()), verdict.first.inner_text()
    finally:
        browser.close()


def _sketch_prediction(page) -> str:
    """The sketch panel's answer. A picture reaches the pad a moment after it is chosen (longer on
    a loaded machine); until then Classify finds the pad empty, so it is pressed again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    label = page.locator('[data-testid="label-output-value"]').first
    for _ in range(4):
        page.get_by_role("button", name="Classify", exact=True).first.click()  # the sketch panel's
        with contextlib.suppress(PlaywrightTimeout):
            label.wait_for(timeout=30_000)
            break
    label.wait_for(timeout=1_000)
    return label.inner_text().strip()


def _upload_to_the_sketch_pad(page, path):
    page.locator("canvas").first.wait_for(timeout=30_000)
    time.sleep(1)  # the pad's canvas takes a moment before it accepts a picture
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Upload an image").first.click()
    chooser.value.set_files(path)


def test_a_sketch_example_and_an_uploaded_picture_are_classified_on_the_pad(page, browser, app_url):
    examples = page.locator("tbody").first.locator("tr")  # the sketch panel's examples
    examples.filter(has_text="digits-sketch").nth(2).click()  # digits-sketch__7__…
    assert _sketch_prediction(page) == "7"
    page.screenshot(path=str(ARTIFACTS / "app-sketch-example.png"))
    other = open_app(browser, app_url)
    example = ROOT / "cmcd" / "shipped" / "examples" / "digits-sketch__3__test3147.png"
    _upload_to_the_sketch_pad(other, example)
    assert _sketch_prediction(other) == "3"


def test_a_file_that_is_no_picture_on_the_sketch_pad_is_one_sentence(page, tmp_path):
    svg = tmp_path / "drawing.svg"
    svg.write_text("this is no picture")
    _upload_to_the_sketch_pad(page, svg)
    page.get_by_role("button", name="Classify", exact=True).first.click()
    page.get_by_text("or upload a PNG or JPEG picture").first.wait_for(timeout=30_000)


def test_gradio_client_runs_a_tiny_distillation_well_above_chance(app_url):
    """The settings of test_core's small_runs (cmc, 3 epochs of 4,096 pairs, seed 0): fewer steps
    leave it at chance (l2 on digits-depth, 1 epoch of 512 pairs: 0.109 measured)."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(app_url, verbose=False)
    answer = json.loads(client.predict("digits-sketch", "cmc", 3, 4096, 128, 0.3, 0, api_name="/distill"))
    assert answer["device"] == "cpu" and answer["settings"]["n_pairs"] == 4096
    assert answer["zero_label_acc"]["head"] >= 2 * 0.1  # twice chance (10 classes)
    with pytest.raises(AppError, match=r"seed \(-1\) must be at least 0"):  # the sentence, not a 400
        client.predict("digits-depth", "l2", 1, 512, 128, 0.3, -1, api_name="/distill")


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=f"number input for {label}")
    box.fill(str(value))
    box.press("Enter")


def test_distilling_in_the_browser_shows_curves_metrics_and_the_alignment_map(page, browser, app_url):
    page.get_by_role("tab", name="Distill").click()
    _set_number(page, "Epochs", 2)  # the defaults' run is a minute on CI's CPU; the path is the same
    _set_number(page, "Unlabeled pairs", 2000)
    page.get_by_role("button", name="Distill", exact=True).click()
    page.wait_for_selector("text=Done on cpu", timeout=180_000)
    assert page.locator(".js-plotly-plot").count() >= 2  # training curves and the map
    assert page.get_by_text("zero-label accuracy, teacher head").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "app-distilled.png"), full_page=True)
    # The run is this visitor's: it is in their Compare tab, not in another visitor's.
    page.get_by_role("tab", name="Compare").click()
    shown(page, "your run: cmc").wait_for(timeout=30_000)  # a table cell (a hidden copy sizes it)
    assert shown(page, "the same student untrained").count() == 1
    other = open_app(browser, app_url)
    other.get_by_role("tab", name="Compare").click()
    shown(other, "benchmark: cmc").first.wait_for(timeout=30_000)
    assert other.get_by_text("your run:").count() == 0


def test_retrieval_theory_and_thumbnails_in_the_browser(page):
    page.get_by_role("tab", name="Retrieve").click()
    page.wait_for_selector("text=retrieved photos are right", timeout=120_000)
    captions = page.locator(".caption-label, figcaption").all_inner_texts()
    assert captions and all(text.strip()[0] in "✓✗" for text in captions if text.strip())
    page.get_by_role("tab", name="Theory").click()
    page.wait_for_selector("text=What the paper's bound says", timeout=30_000)
    page.locator(".js-plotly-plot").filter(visible=True).first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "app-theory.png"), full_page=True)


def test_an_uploaded_depth_map_gets_its_mask_in_the_browser(page):
    example = ROOT / "cmcd" / "shipped" / "examples" / "digits-depth__3__test3147.npy"
    page.locator('input[type="file"][accept*=".npy"]').first.set_input_files(str(example))
    page.get_by_role("button", name="Classify", exact=True).nth(1).click()  # the depth panel's
    mask = page.locator(".block").filter(has_text="Student's mask").locator("img")
    mask.first.wait_for(timeout=120_000)
    page.wait_for_function("() => [...document.images].every(image => image.complete)")
    assert mask.first.evaluate("image => image.naturalWidth") >= 32
    page.get_by_text("Each pixel labelled").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "app-depth-mask.png"), full_page=True)


def _choose(page, label: str, option: re.Pattern):
    """Pick an option of a Gradio dropdown by its label."""
    page.get_by_label(label).first.click()
    page.get_by_role("option", name=option).first.click()


def test_your_student_is_tried_downloaded_and_still_listed_after_a_reload(page):
    import zipfile

    page.get_by_role("tab", name="Distill").click()
    _set_number(page, "Epochs", 1)
    _set_number(page, "Unlabeled pairs", 2000)
    page.get_by_role("button", name="Distill", exact=True).click()
    page.wait_for_selector("text=Done on cpu", timeout=900_000)  # with calibration and ONNX export
    with page.expect_download(timeout=60_000) as download:
        page.get_by_text("Download your student").first.click()
    with zipfile.ZipFile(download.value.path()) as bundle:
        assert {"student.safetensors", "student.json", "student.onnx", "README.txt"} <= set(bundle.namelist())
    page.get_by_role("tab", name="Try it").click()
    _choose(page, "Student", re.compile("^your digits-sketch student"))
    _draw_on_the_pad(page, ((0.25, 0.2), (0.75, 0.2), (0.4, 0.85)))
    page.get_by_role("button", name="Classify", exact=True).first.click()
    answer = page.get_by_role("heading", name=re.compile(r"^(Not sure — closest: )?\d \(\d+ %\)$"))
    answer.filter(visible=True).first.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "app-your-student.png"), full_page=True)
    page.reload()
    page.wait_for_selector("text=Draw a sketch", timeout=60_000)
    page.get_by_role("tab", name="Compare").click()
    shown(page, "your run: cmc").first.wait_for(timeout=30_000)  # the browser kept the run's id
