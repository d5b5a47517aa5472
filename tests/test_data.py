"""The paired data: sources, renderers, splits, the registry, the cache, contact sheets."""

import dataclasses
import json
import logging
import subprocess
import sys
from itertools import pairwise

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cmcd import cli, paths
from cmcd.data import sources
from cmcd.modalities import RenderRequest, get_modality, pairs
from cmcd.modalities.sketch import people_digits
from cmcd.modalities.sketch import renderer as sketch_renderer
from cmcd.modalities.sketch.renderer import thin
from cmcd.viz.contact_sheet import write_contact_sheet

IMAGE_PAIRS = ["digits-sketch", "digits-depth", "fashion-sketch", "fashion-depth"]


@pytest.fixture(scope="module")
def digits():
    return sources.load_digits()


@pytest.fixture(scope="module")
def fashion():
    return sources.load_fashion()


def _sample(source, count=200):
    rows = np.linspace(0, len(source.ids) - 1, count).astype(int)
    return source.images[rows], source.ids[rows]


def _render(modality, images, ids, seed=0, gap=0.3, dataset="digits"):
    """Render through the modality record, with the options of the dataset's sketch pair."""
    options = pairs.PAIRS[f"{dataset}-sketch"].render_options
    labels = np.zeros(len(ids), dtype=np.int64)
    request = RenderRequest(images, ids, labels, "test", seed, gap, options)
    return get_modality(modality).render(request)


# --- sources -------------------------------------------------------------------------------------

def test_digits_are_the_10000_real_mnist_digits_then_peoples_ways_of_writing(digits):
    mnist = digits.images[: len(digits.ids) - digits.added]
    assert mnist.shape == (10_000, 28, 28) and digits.images.dtype == np.uint8
    assert sorted(np.unique(digits.labels)) == list(range(10))
    assert digits.images.max() == 255 and digits.images.min() == 0
    assert 0.08 < mnist.mean() / 255 < 0.2  # MNIST: dark background, thin bright strokes
    added = digits.ids >= sources.FIRST_ADDED_ID
    assert added.sum() == digits.added == 10 * people_digits.ITEMS_PER_CLASS
    assert np.bincount(digits.labels[added]).tolist() == [people_digits.ITEMS_PER_CLASS] * 10
    assert 0.08 < digits.images[added].mean() / 255 < 0.2  # framed as MNIST's


def test_shipped_peoples_digits_are_what_their_maker_draws(digits):
    first = len(digits.ids) - digits.added
    for label, index in ((1, 0), (6, 2), (9, 1), (4, 3)):  # pen strokes (even), printed (odd)
        shipped = digits.images[first + label * people_digits.ITEMS_PER_CLASS + index].astype(int)
        drawn = people_digits.make_item(label, index).astype(int)
        assert np.abs(shipped - drawn).mean() < 2  # fonts may rasterise a hair differently elsewhere


def test_added_items_are_split_apart_and_leave_mnists_splits_as_they_were(digits):
    rows = pairs.split_indices(digits)
    mnist_only = dataclasses.replace(digits, images=digits.images[:10_000], labels=digits.labels[:10_000],
                                     ids=digits.ids[:10_000], added=0)
    before = pairs.split_indices(mnist_only)
    for split in pairs.SPLITS:
        assert np.array_equal(rows[split][rows[split] < 10_000], before[split])
    for split in ("val", "test"):
        added = rows[split][digits.ids[rows[split]] >= sources.FIRST_ADDED_ID]
        assert np.bincount(digits.labels[added]).tolist() == [sources.ADDED_HELD_OUT_PER_CLASS] * 10
    assert not set(rows["val"]) & set(rows["test"]) and not set(rows["test"]) & set(rows["pairs"])


def test_shipped_fashion_subset_is_stratified_and_small():
    path = paths.source_data("fashion-subset.npz")
    assert path.stat().st_size <= 10 * 1024 * 1024
    with np.load(path) as data:
        assert np.bincount(data["labels"]).tolist() == [1200] * 10
        assert len(np.unique(data["ids"])) == 12_000


FALLBACK_NOTE = "shipped 12,000-image Fashion-MNIST subset"


def test_missing_debian_fashion_falls_back_and_says_so_once(monkeypatch, caplog, tmp_path):
    monkeypatch.setattr(sources, "FASHION_DEBIAN_DIR", tmp_path / "absent")
    sources._warn_fashion_fallback_once.cache_clear()
    caplog.set_level(logging.INFO, logger="cmcd")
    first, second = sources.load_fashion(), sources.load_fashion()
    assert len(first.ids) == len(second.ids) == 12_000
    assert sum(FALLBACK_NOTE in record.getMessage() for record in caplog.records) == 1


def test_library_messages_reach_stderr_only_through_the_command_line(monkeypatch, capsys, tmp_path):
    """A library user sees nothing unless they configure logging; `cmcd` shows "cmcd: ..." lines."""
    script = ("from pathlib import Path; from cmcd.data import sources; "
              "sources.FASHION_DEBIAN_DIR = Path('/nonexistent'); sources.load_fashion()")
    alone = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert alone.returncode == 0 and alone.stderr == "", alone.stderr
    monkeypatch.setattr(sources, "FASHION_DEBIAN_DIR", tmp_path / "absent")
    sources._warn_fashion_fallback_once.cache_clear()
    with cli.progress_on_stderr():
        sources.load_fashion()
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"cmcd: {tmp_path / 'absent'} not found") and FALLBACK_NOTE in line
    sources._warn_fashion_fallback_once.cache_clear()
    sources.load_fashion()  # the command is over: quiet again
    assert capsys.readouterr().err == ""


def test_full_fashion_agrees_with_the_shipped_subset(require, fashion):
    require("full Fashion-MNIST")
    assert len(fashion.ids) == 70_000
    with np.load(paths.source_data("fashion-subset.npz")) as data:
        np.testing.assert_array_equal(fashion.images[data["ids"]], data["images"])
        np.testing.assert_array_equal(fashion.labels[data["ids"]], data["labels"])


# --- renderers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("modality, shape, dtype", [
    ("rgb", (3, 32, 32), torch.uint8),
    ("sketch", (1, 32, 32), torch.float32),
    ("depth", (1, 32, 32), torch.float32),
])
def test_render_shapes_dtypes_and_ranges(digits, modality, shape, dtype):
    images, ids = _sample(digits, 64)
    out = _render(modality, images, ids)
    assert out.shape == (64, *shape) and out.dtype == dtype
    if modality == "depth":
        assert out.min() >= 0 and out.max() <= 1
        valid = out[out > 0]
        assert 0.2 < valid.mean() < 1.0
        assert 0 < (out == 0).float().mean() < 0.3  # some readings missing, most present
    if modality == "sketch":
        paper = out.median()
        assert paper > 230 / 255  # white paper
        assert (out < 100 / 255).float().mean() > 0.03  # and dark ink on it
    if modality == "rgb":
        assert out.float().std() > 20  # a picture, not a flat colour


@pytest.mark.parametrize("modality", ["rgb", "sketch", "depth"])
@pytest.mark.parametrize("dataset", ["digits", "fashion"])
def test_renders_are_deterministic_per_item_and_seed(request, modality, dataset):
    source = request.getfixturevalue(dataset)
    images, ids = _sample(source, 40)
    first = _render(modality, images, ids, dataset=dataset)
    again = _render(modality, images, ids, dataset=dataset)
    assert first.numpy().tobytes() == again.numpy().tobytes()
    alone = _render(modality, images[7:8], ids[7:8], dataset=dataset)
    one_level = 1.0 if first.dtype == torch.uint8 else 1.0 / 255  # one grey level of a picture
    assert (alone[0].float() - first[7].float()).abs().max() <= one_level  # same item, any batch
    other_seed = _render(modality, images, ids, seed=1, dataset=dataset)
    assert not torch.equal(first, other_seed)


@pytest.mark.parametrize("modality", ["sketch", "depth"])
@pytest.mark.parametrize("dataset", ["digits", "fashion"])
def test_gap_moves_the_target_away_monotonically(request, modality, dataset):
    images, ids = _sample(request.getfixturevalue(dataset), 200)
    reference = _render(modality, images, ids, gap=0.0, dataset=dataset).float()
    scale = 1.0
    distances = [
        (_render(modality, images, ids, gap=gap, dataset=dataset).float() - reference).abs().mean()
        / scale for gap in (0.25, 0.5, 0.75, 1.0)
    ]
    assert all(a < b for a, b in pairwise(distances)), distances
    assert distances[-1] > 2 * distances[0]


def test_thinning_leaves_one_pixel_wide_strokes():
    bar = torch.zeros(1, 1, 16, 24)
    bar[0, 0, 6:11, 2:22] = 1  # a 5-pixel-thick horizontal bar
    line = thin(bar)
    assert line.sum() >= 12  # a long line is left ...
    assert (line.sum(dim=2) <= 1).all()  # ... one pixel wide


def test_thinning_a_batch_is_thinning_each_image_alone():
    """Images that are thin early stop being worked on: the batch must still come out exactly as
    each image thinned on its own, including when the iteration cap stops a thick one."""
    noise = F.avg_pool2d(torch.rand(64, 1, 24, 24, generator=torch.Generator().manual_seed(0)), 5, 1, 2)
    blobs = (noise > noise.flatten(1).quantile(0.6, dim=1).view(-1, 1, 1, 1)).float()
    for cap in (40, 3):
        alone = torch.cat([thin(blob[None], cap) for blob in blobs])
        assert torch.equal(thin(blobs, cap), alone)
    assert not torch.equal(thin(blobs, 1), thin(blobs))  # the cap matters: blobs take iterations


def _ink_box_sides(sketches: torch.Tensor) -> torch.Tensor:
    """The longer side, in pixels, of the dark ink's bounding box of each (1, H, W) sketch."""
    ink = sketches[:, 0] < 0.5
    rows, cols = ink.any(2), ink.any(1)
    height = rows.shape[1] - rows.float().argmax(1) - rows.flip(1).float().argmax(1)
    width = cols.shape[1] - cols.float().argmax(1) - cols.flip(1).float().argmax(1)
    return torch.maximum(height, width)


def test_sketches_end_as_the_app_reads_a_drawing(digits):
    """Wherever and however large they were drawn, training sketches are cropped to their ink and
    centred, as a person's drawing is. The redraw thins the strokes, so a fat pen's sketch spans a
    little less than the glyph box (as a visitor's fat-marker drawing does), never more."""
    images, ids = _sample(digits, 200)
    out = _render("sketch", images, ids)
    ink = out[:, 0] < 0.5
    rows, cols = ink.any(2).float(), ink.any(1).float()
    size = out.shape[-1]
    centre_y = (rows.argmax(1) + size - rows.flip(1).argmax(1)) / 2
    centre_x = (cols.argmax(1) + size - cols.flip(1).argmax(1)) / 2
    off_centre = torch.maximum((centre_y - size / 2).abs(), (centre_x - size / 2).abs())
    assert (off_centre <= 1).float().mean() > 0.9, off_centre
    sides = _ink_box_sides(out)
    assert (sides <= sketch_renderer.GLYPH_BOX + 1).all(), sides
    assert (sides >= sketch_renderer.GLYPH_BOX - 5).float().mean() > 0.95, sides


def test_people_pens_go_from_fine_to_fat():
    path = torch.zeros(200, 1, 64, 64)
    path[:, 0, 10:54, 32] = 1
    ink = sketch_renderer._people_pens(path, torch.arange(200), 0).flatten(1).sum(1)
    assert ink.max() > 3 * ink.min()


def test_the_crop_ignores_where_and_how_large_a_drawing_is():
    small, large = torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64)
    small[0, 0, 5:25, 8:10], small[0, 0, 5:7, 8:20] = 1, 1  # an L-turned-round, top left
    large[0, 0, 20:60, 30:34], large[0, 0, 20:24, 30:54] = 1, 1  # twice as large, lower right
    a, b = (sketch_renderer.crop_to_glyph_box(x) > 0.4 for x in (small, large))
    assert (a != b).float().mean() < 0.03


def test_a_fine_pen_on_a_big_canvas_keeps_its_strokes():
    canvas = np.ones((600, 600), dtype=np.float32)
    canvas[100:500, 300] = 0.0  # a one-pixel line, 400 pixels long
    canvas[100, 150:300] = 0.0
    sketch = get_modality("sketch").read_drawing(canvas)
    assert _ink_box_sides(sketch[None]).item() >= sketch_renderer.GLYPH_BOX - 1
    assert ((sketch[0] < 0.5).sum(0) > 0).sum() >= 8  # the top bar is drawn, not lost


# --- pairs, splits, cache ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_sketch():
    return pairs.load_pair("digits-sketch")


def test_pair_tensors(digits_sketch):
    data = digits_sketch
    assert data.sizes() == {"teacher": 9400, "pairs": 9400, "val": 1300, "test": 1300}
    assert data.teacher.target is None
    for split in ("pairs", "val", "test"):
        part = data.split(split)
        assert part.source.shape == (len(part), 3, 32, 32) and part.source.dtype == torch.uint8
        assert part.target.shape == (len(part), 1, 32, 32) and part.target.dtype == torch.float32
        assert 0 <= part.target.min() and part.target.max() <= 1
        assert part.labels.dtype == torch.int64


@pytest.mark.parametrize("name", list(pairs.PAIRS))
def test_splits_are_disjoint_and_balanced(name):
    source = sources.load_source(pairs.get_spec(name).dataset)
    rows = pairs.split_indices(source)
    held_out = set(source.ids[rows["val"]]) | set(source.ids[rows["test"]])
    assert not set(source.ids[rows["val"]]) & set(source.ids[rows["test"]])
    assert not held_out & set(source.ids[rows["pairs"]])
    assert not held_out & set(source.ids[rows["teacher"]])
    added = sources.ADDED_HELD_OUT_PER_CLASS if source.added else 0  # people's ways of writing
    for split in ("val", "test"):
        assert np.bincount(source.labels[rows[split]]).tolist() == [100 + added] * 10
    pair_counts = np.bincount(source.labels[rows["pairs"]])
    assert pair_counts.min() > 0.6 * pair_counts.max()


def test_instance_pairs_show_the_same_item(digits_sketch):
    """Sketch ink lies where the photo's glyph is: closer than for another item of the same class,
    and closer still than for a random item (slant, tilt and the crop keep it from matching
    pixel for pixel)."""
    test = digits_sketch.test
    photo = test.source.float()
    photo_contrast = (photo.mean(1) - photo.mean(dim=(1, 2, 3))[:, None, None]).abs()
    ink = 1 - test.target[:, 0]
    same_class = torch.empty(len(test.labels), dtype=torch.long)
    for label in test.labels.unique():
        rows = (test.labels == label).nonzero()[:, 0]
        same_class[rows] = rows.roll(1)

    def agreement(a, b):
        a = (a - a.mean(dim=(1, 2), keepdim=True)).flatten(1)
        b = (b - b.mean(dim=(1, 2), keepdim=True)).flatten(1)
        return torch.nn.functional.cosine_similarity(a, b).mean()

    own = agreement(photo_contrast, ink)
    assert own > agreement(photo_contrast, ink[same_class]) + 0.035
    assert own > agreement(photo_contrast, ink.roll(500, dims=0)) + 0.07


def test_warm_load_reads_the_cache_and_matches(digits_sketch):
    again = pairs.load_pair("digits-sketch", progress=lambda message: pytest.fail(message))
    assert torch.equal(again.test.target, digits_sketch.test.target)
    assert torch.equal(again.pairs.source, digits_sketch.pairs.source)


def test_cache_files_are_written_atomically_and_keyed(digits_sketch):
    folder = paths.cache_dir()
    names = sorted(path.name for path in folder.iterdir())
    keyed = pairs._target_file(pairs.get_spec("digits-sketch"), 0.3, 0).name
    assert keyed.startswith("target-digits-sketch-g0.300-s0-o") and keyed in names
    assert not [name for name in names if name.endswith(".tmp")]


def test_a_pair_whose_render_options_change_gets_targets_of_its_own():
    spec = pairs.get_spec("digits-audio")
    same = dataclasses.replace(spec, render_options=dict(spec.render_options))
    halved = {**spec.render_options, "real_share": spec.render_options["real_share"] / 2}
    other_share = dataclasses.replace(spec, render_options=halved)
    assert pairs._target_file(same, 0.3, 0) == pairs._target_file(spec, 0.3, 0)
    assert pairs._target_file(other_share, 0.3, 0) != pairs._target_file(spec, 0.3, 0)


def test_unknown_pair_and_bad_gap_are_clear_errors():
    with pytest.raises(ValueError, match="valid pairs: digits-sketch, digits-depth"):
        pairs.load_pair("digits-smell")
    with pytest.raises(ValueError, match="gap must be a number from 0"):
        pairs.load_pair("digits-depth", gap=1.5)


def test_build_makes_no_network_connection(no_network, monkeypatch, tmp_path):
    monkeypatch.setenv("CMCD_CACHE", str(tmp_path))
    data = pairs.load_pair("digits-depth", gap=0.6, seed=3, progress=lambda message: None)
    assert data.sizes()["test"] == 1300  # 100 MNIST digits and 30 in people's ways per class
    assert list(tmp_path.rglob("target-digits-depth-g0.600-s3.safetensors"))
    assert not no_network


def test_contact_sheet_is_written(digits_sketch, tmp_path):
    path = write_contact_sheet(digits_sketch, tmp_path / "sheets" / "digits-sketch.png")
    image = Image.open(path)
    assert image.height > 10 * 32 * 2 and image.width > 4 * 2 * 32 * 2  # a row per class
    assert np.asarray(image.convert("L")).std() > 30


# --- command line --------------------------------------------------------------------------------

def _cmcd(*args):
    return subprocess.run([sys.executable, "-m", "cmcd", *args], capture_output=True, text=True)


def test_cli_pairs_json_lists_every_pair_with_sizes():
    result = _cmcd("pairs", "--json")
    assert result.returncode == 0, result.stderr
    listed = {row["name"]: row for row in json.loads(result.stdout)["pairs"]}
    assert set(listed) == set(pairs.PAIRS)
    assert listed["digits-audio"]["pairing"] == "class"
    assert listed["digits-sketch"]["pairing"] == "instance"
    assert listed["digits-depth"]["sizes"]["test"] == 1300


def test_cli_unknown_pair_is_one_line_error_without_traceback():
    result = _cmcd("data", "--pair", "digits-smell")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("cmcd: error: unknown pair 'digits-smell'")
