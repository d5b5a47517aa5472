"""Segmentation: item masks, dense losses, dense distillation, its CLI and its benchmark."""

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from cmcd import cli, paths
from cmcd.bench import segmentation as bench
from cmcd.eval.segmentation import confusion, few_label_rows, segmentation_scores
from cmcd.modalities import masks, pairs
from cmcd.modalities.depth.renderer import render_depth
from cmcd.modalities.rgb.renderer import render_rgb
from cmcd.models.dense import load_segmenter, predict_masks
from cmcd.train.config import SEGMENTATION_METHODS, DistillConfig, SegmentConfig, choose_pairs
from cmcd.train.dense_losses import sample_locations
from cmcd.train.losses import LOSSES, build_loss
from cmcd.train.objectives import METHODS
from cmcd.train.segment import save_segment_run, segment_distill

SHORT_STEPS = 100  # enough for a student well above chance (see the quality test)
TINY = {"steps": 2, "n_pairs": 32, "head_steps": 2, "fine_tune_steps": 1, "few_label_draws": 1}


@pytest.fixture(scope="module")
def seg():
    return masks.load_segmentation("digits-depth")


# --- masks ---------------------------------------------------------------------------------------

def test_default_renders_are_unchanged_by_the_mask_hooks():
    """The bytes main rendered before segmentation existed (so existing caches stay valid)."""
    source = pairs.source_images("digits")
    rows = np.linspace(0, len(source.ids) - source.added - 1, 6).astype(int)  # MNIST's items
    images, ids = source.images[rows], source.ids[rows]
    photos, depth = render_rgb(images, ids, 0), render_depth(images, ids, 0, 0.3)
    assert hashlib.sha256(photos.numpy().tobytes()).hexdigest()[:16] == "9f84815f9298be76"
    assert hashlib.sha256(depth.numpy().tobytes()).hexdigest()[:16] == "b4f917a725be84ac"


def test_masks_hold_background_and_the_item_class(seg):
    split, labels = seg.split("test"), seg.data.test.labels
    for maps in (split.source_masks, split.target_masks):
        assert maps.shape == (len(labels), 32, 32) and maps.dtype == torch.uint8
        item = maps > 0
        assert torch.equal(torch.where(item, maps.long(), labels[:, None, None] + 1),
                           (labels[:, None, None] + 1).expand_as(maps))
        assert 0.05 < item.float().mean() < 0.4
    assert masks.NUM_CLASSES == 11


def _contrast(images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Per item: |mean inside the mask − mean outside| of a picture's grey values."""
    grey = images.float().mean(dim=1)
    item = (maps > 0).float()
    inside = (grey * item).sum((1, 2)) / item.sum((1, 2))
    outside = (grey * (1 - item)).sum((1, 2)) / (1 - item).sum((1, 2))
    return (inside - outside).abs()


def test_each_mask_lines_up_with_its_own_picture(seg):
    split, test = seg.split("test"), seg.data.test
    rows = torch.arange(200)
    photos, depth = test.source[rows], test.target[rows]
    # photos: the object stands out of the background under its own mask, less under the depth map's
    own, other = _contrast(photos, split.source_masks[rows]), _contrast(photos, split.target_masks[rows])
    assert own.mean() > 1.3 * other.mean()
    # depth maps: the relief is nearer (smaller) inside the item; holes (0) left out
    valid = depth[:, 0] > 0

    def nearer(maps):
        item = (maps > 0) & valid
        background = (maps == 0) & valid
        return ((depth[:, 0] * background).sum((1, 2)) / background.sum((1, 2))
                - (depth[:, 0] * item).sum((1, 2)) / item.sum((1, 2)))

    assert (nearer(split.target_masks[rows]) > 0).all()
    assert nearer(split.target_masks[rows]).mean() > 1.3 * nearer(split.source_masks[rows]).mean()


def test_registered_photos_are_drawn_in_the_target_geometry(seg):
    rows = torch.arange(100)
    registered = masks.registered_photos(seg, rows)
    maps = seg.split("pairs")
    own = _contrast(registered, maps.target_masks[rows])
    assert own.mean() > 1.3 * _contrast(registered, maps.source_masks[rows]).mean()
    assert torch.equal(masks.registered_photos(seg)[rows], registered)  # the cached file agrees


def test_segmentation_needs_a_pair_with_masks():
    with pytest.raises(ValueError, match="segmentation needs a pair"):
        SegmentConfig(pair="digits-audio")
    with pytest.raises(ValueError, match="segmentation methods"):
        SegmentConfig(method="crd")


def test_both_tasks_choose_their_pairs_alike_and_refuse_fewer_than_one():
    recognition, segmentation = DistillConfig(n_pairs=3, seed=1), SegmentConfig(n_pairs=3, seed=1)
    chosen = segmentation.chosen_pairs(10)
    assert torch.equal(chosen, recognition.chosen_pairs(10)) and len(chosen.unique()) == 3
    assert torch.equal(SegmentConfig().chosen_pairs(10), torch.arange(10))  # default: all of them
    with pytest.raises(ValueError, match="at least 1"):
        choose_pairs(10, 0, seed=0)
    with pytest.raises(ValueError, match="n_pairs"):
        SegmentConfig(n_pairs=0)


def test_the_segmentation_methods_are_the_registrys_dense_losses():
    dense = {name for name, loss in LOSSES.items() if loss.task == "segmentation"}
    assert set(SEGMENTATION_METHODS.values()) == dense
    for method, name in SEGMENTATION_METHODS.items():
        assert SegmentConfig(method=method).loss_name == name


# --- dense losses --------------------------------------------------------------------------------

def test_dense_losses_share_the_registry_but_not_the_recognition_methods():
    for name in ("dense-cmc", "dense-cmd", "dense-l2"):
        assert LOSSES[name].task == "segmentation" and name not in METHODS
    assert SegmentConfig(method="dense-cmd").method == "cmd"
    assert SegmentConfig(method="l2").loss_name == "dense-l2"


def test_sampled_locations_pair_the_same_location_on_both_sides():
    teacher = torch.randn(3, 5, 4, 4)
    v, u = sample_locations(teacher * 2, teacher, 6, torch.Generator().manual_seed(0))
    assert v.shape == u.shape == (18, 5) and torch.allclose(v, 2 * u)
    assert len({tuple(row.tolist()) for row in u}) == 18  # without replacement


@pytest.mark.parametrize("name", ["dense-cmc", "dense-cmd", "dense-l2"])
def test_dense_loss_is_lower_for_matching_features_and_trains_the_student(name):
    torch.manual_seed(0)
    teacher = torch.nn.functional.normalize(torch.randn(8, 16, 8, 8), dim=1)
    shuffled = teacher.flatten(2)[:, :, torch.randperm(64)].reshape(teacher.shape)
    loss = build_loss(name)
    matching = loss(teacher.clone(), teacher)[name]
    assert matching < loss(shuffled, teacher)[name]
    student = shuffled.clone().requires_grad_(True)
    loss(student, teacher)[name].backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


# --- scores --------------------------------------------------------------------------------------

def test_miou_and_pixel_accuracy():
    truth = torch.tensor([[0, 0, 1, 1], [0, 0, 2, 2]])
    assert segmentation_scores(truth, truth, 3)["miou"] == 1.0
    predicted = torch.tensor([[0, 0, 1, 2], [0, 0, 2, 2]])
    scores = segmentation_scores(predicted, truth, 3)
    assert scores["pixel_acc"] == pytest.approx(7 / 8)
    assert scores["iou"] == [1.0, 0.5, pytest.approx(2 / 3, abs=1e-4)]
    assert scores["miou"] == pytest.approx((1 + 0.5 + 2 / 3) / 3, abs=1e-4)
    assert scores["miou_foreground"] == pytest.approx((0.5 + 2 / 3) / 2, abs=1e-4)  # class 0 left out
    assert confusion(predicted, truth, 3).sum() == 8


def test_the_segmentation_plan_has_the_ssl_teacher_as_main_setting_on_5_seeds():
    runs = bench.planned_runs(bench.FULL)
    main = [c for study, c in runs if study == "main"]
    ablation = [c for study, c in runs if study == "ablation"]
    assert {c.teacher for c in main} == {"ssl"} and {c.teacher for c in ablation} == {"ft"}
    assert {c.seed for c in main} == set(range(5))
    assert len(main) == len(bench.FULL.pairs) * len(bench.METHODS) * 5


def test_few_label_rows_take_k_per_class_and_repeat():
    labels = torch.arange(10).repeat(20)
    rows = few_label_rows(labels, 5, draw=0, seed=0)
    assert torch.bincount(labels[rows]).tolist() == [5] * 10
    assert torch.equal(rows, few_label_rows(labels, 5, draw=0, seed=0))
    assert not torch.equal(rows, few_label_rows(labels, 5, draw=1, seed=0))


def _runs(pair, method, values):
    return [{"config": {"pair": pair, "method": method, "seed": seed, "teacher": "ssl"},
             "metrics": {"miou_zero_label": value, "miou_few_label": {"10": value}}}
            for seed, value in enumerate(values)]


def test_verdicts_call_a_win_only_when_the_corrected_interval_excludes_zero():
    runs = (_runs("digits-depth", "cmc", [0.60, 0.62, 0.61, 0.63, 0.60])
            + _runs("digits-depth", "cmd", [0.60, 0.40, 0.55, 0.45, 0.52])
            + _runs("digits-depth", "l2", [0.50, 0.51, 0.50, 0.52, 0.50]))
    rows = {(r["method"], r["metric"]): r for r in bench.verdicts(runs)}
    assert len(rows) == 4  # cmc and cmd x zero-label and 10-label mIoU: one Holm family
    clear, noisy = rows[("cmc", "miou_zero_label")], rows[("cmd", "miou_zero_label")]
    assert clear["verdict"] == "beats" and clear["ci_low"] > 0 and clear["p_holm"] >= clear["p"]
    assert noisy["verdict"] == "ties" and noisy["ci_low"] < 0 < noisy["ci_high"]


# --- distillation, CLI and benchmark -------------------------------------------------------------

def test_tiny_segmentation_distillation_runs_and_its_student_loads_back(seg, tmp_path):
    run = segment_distill(SegmentConfig(**TINY))
    m = run.metrics
    assert 0 <= m["miou_zero_label"] <= 1 and 0 <= m["pixel_acc"] <= 1
    assert set(m["miou_few_label"]) == {"1", "5", "10"} and 0 < m["teacher_miou"] <= 1
    assert m["n_pairs"] == 32 and m["steps"] == 2 and m["wall_s"] > 0
    save_segment_run(run, tmp_path / "run")
    student, head, metadata = load_segmenter(tmp_path / "run" / "student")
    inputs = seg.data.test.target[:4]
    reloaded, trained = predict_masks(student, head, inputs), predict_masks(run.student, run.head, inputs)
    assert torch.equal(reloaded[0], trained[0])
    assert metadata["pair"] == "digits-depth" and metadata["method"] == "cmc"


def test_cli_distills_and_segments_a_depth_map(tmp_path, capsys):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    assert cli.main(["distill", "--task", "segmentation", "--method", "cmd", *flags,
                     "--out", str(tmp_path / "run"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["loss"] == "dense-cmd" and "miou_zero_label" in metrics
    example = paths.examples_dir() / "digits-depth__3__test3147.png"
    out = tmp_path / "mask.png"
    assert cli.main(["classify", "--task", "segmentation", "--pair", "digits-depth", "--run",
                     str(tmp_path / "run"), str(example), "--json", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"label", "classes", "mask"} <= set(result)
    image = Image.open(out)
    assert image.mode == "P" and image.size == (32, 32)
    assert np.array_equal(np.asarray(image), np.array(result["mask"]))


def test_cli_keeps_the_tasks_settings_apart(capsys):
    assert cli.main(["distill", "--task", "segmentation", "--epochs", "2"]) == 2
    assert "--epochs is not a setting of --task segmentation" in capsys.readouterr().err
    assert cli.main(["distill", "--pair", "digits-depth", "--locations", "4"]) == 2
    assert "--locations is a setting of --task segmentation" in capsys.readouterr().err


def test_bench_segmentation_quick_writes_runs_teacher_and_verdicts(tmp_path):
    report = bench.run(out=str(tmp_path), quick=True)
    saved = json.loads((tmp_path / "segmentation.json").read_text())
    assert saved["benchmark"] == "segmentation" and len(saved["runs"]) == 2
    for run in saved["runs"]:
        assert {"pair", "method", "seed"} <= set(run["config"]) and run["config"]["teacher"] == "ssl"
        assert {"miou_zero_label", "miou_foreground_zero_label", "pixel_acc", "miou_few_label"} \
            <= set(run["metrics"])
        assert set(run["metrics"]["miou_few_label"]) == {"1", "5", "10"}
    assert "miou" in saved["teacher"]["digits-depth"]
    assert {row["method"] for row in saved["verdicts"]} == {"cmc"}
    assert "miou_foreground_zero_label" in {row["metric"] for row in saved["verdicts"]}
    assert "teacher on the test photos" in (tmp_path / "segmentation.md").read_text()
    assert report["written"]


def test_a_short_segmentation_distillation_is_well_above_chance(seg):
    """On a fixed seed, the student's zero-label masks beat answering "background" everywhere by far:
    mIoU at least twice that answer's, and more pixels right than it gets."""
    background = float((seg.split("test").target_masks == 0).float().mean())
    run = segment_distill(SegmentConfig(steps=SHORT_STEPS, seed=0, device="cpu", fine_tune_steps=1,
                                        few_label_draws=1))
    assert run.metrics["miou_zero_label"] >= 2 * background / masks.NUM_CLASSES
    assert run.metrics["pixel_acc"] > background


# --- the app -------------------------------------------------------------------------------------

def test_the_distill_tabs_segmentation_section_trains_with_its_settings_and_shows_a_mask(monkeypatch):
    import app
    from cmcd.app import segment

    used = []

    def tiny(**settings):
        used.append(settings)
        return SegmentConfig(**{**settings, "n_pairs": 32, "head_steps": 2, "fine_tune_steps": 1,
                                "few_label_draws": 1})

    monkeypatch.setattr(segment, "SegmentConfig", tiny)
    text, picture = segment.distill_segmentation("digits-depth", "cmd", 20, 3)
    assert used == [{"pair": "digits-depth", "method": "cmd", "steps": 20, "seed": 3, "device": "cpu"}]
    assert text.startswith("| digits-depth, dense-cmd, seed 3 | test |") and "zero-label mIoU" in text
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.dtype == np.uint8
    config = app.build_demo().get_config_file()
    buttons = {c["id"]: c["props"].get("value") for c in config["components"] if c["type"] == "button"}
    [wired] = [d for d in config["dependencies"]
               if any(buttons.get(target) == "Distill for segmentation" for target, _ in d["targets"])]
    assert len(wired["inputs"]) == 4 and len(wired["outputs"]) == 2



def test_the_data_tab_shows_masks_of_depth_pairs_only(seg):
    from cmcd.app import segment

    sheet = segment.mask_sheet("digits-depth")
    assert sheet.width > sheet.height > 0
    assert segment.mask_sheet("digits-sketch") is None


def test_the_try_it_depth_panel_masks_an_upload_with_the_shipped_segmenter():
    from cmcd.app import segment
    from cmcd.eval.segment_files import has_shipped_segmenter

    assert has_shipped_segmenter("digits-depth"), "no shipped segmentation student"
    example = paths.examples_dir() / "digits-depth__3__test3147.npy"
    picture, caption = segment.segment_upload("digits-depth", str(example))
    assert picture.shape == (256, 256, 3) and picture.dtype == np.uint8
    assert "**3**" in caption
    assert segment.segment_upload("fashion-depth", str(example))[0] is None  # none ships for it
