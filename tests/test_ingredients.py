"""Ablation of the people-like data ingredients: `PAIR-without-INGREDIENT` pairs, the renderers'
`without` option, and `cmcd bench ingredients` (quick runs: the pipeline and the file format; the
verdicts on made-up runs)."""

import json

import numpy as np
import pytest
import torch

from cmcd.bench import ingredients
from cmcd.cli import main
from cmcd.data import sources
from cmcd.modalities import pairs
from cmcd.modalities.audio import renderer as audio
from cmcd.modalities.audio import speech
from cmcd.modalities.sketch import renderer as sketch

ALL_SKETCH = "digits-sketch-without-pens+hand+coarsen"


def test_variant_pairs_resolve_in_the_ingredients_order():
    spec = pairs.get_spec("digits-sketch-without-coarsen+pens")
    assert spec.name == "digits-sketch-without-pens+coarsen" and spec.base == "digits-sketch"
    assert spec.render_options == {"strokes": "skeleton", "without": ("pens", "coarsen")}
    assert "without" not in pairs.get_spec("digits-sketch").render_options
    assert spec.name not in pairs.PAIRS  # variants are not listed, shipped or shown in the app


@pytest.mark.parametrize("name, message", [
    ("digits-sketch-without-wings", "no ingredient 'wings'.*pens, hand, coarsen"),
    ("fashion-sketch-without-hand", "no ingredient 'hand'.*pens, coarsen"),
    ("digits-depth-without-pens", "ingredients: none"),
    ("digits-sketch-without-pens+pens", "listed twice"),
    ("digits-skecth-without-pens", "unknown pair"),
])
def test_bad_variants_say_what_is_valid(name, message):
    with pytest.raises(ValueError, match=message):
        pairs.get_spec(name)


def _digits(count: int = 48):
    source = sources.load_source("digits")
    rows = np.arange(count)
    return source.images[rows], source.ids[rows]


def test_each_sketch_ingredient_left_out_changes_some_drawings_and_only_when_left_out():
    images, ids = _digits()
    full = sketch.render_sketch(images, ids, 0, 0.3, "skeleton")
    assert torch.equal(full, sketch.render_sketch(images, ids, 0, 0.3, "skeleton", without=()))
    for ingredient in sketch.INGREDIENTS:
        changed = (sketch.render_sketch(images, ids, 0, 0.3, "skeleton", (ingredient,)) != full)
        share = changed.flatten(1).any(1).float().mean()
        assert share > 0.1, ingredient
    with pytest.raises(ValueError, match="unknown sketch ingredients"):
        sketch.render_sketch(images, ids, 0, 0.3, "skeleton", ("wings",))


def test_spoken_digits_without_recorded_voices_or_warps_pick_only_what_is_left():
    bank = speech.clip_bank()
    labels, ids = torch.arange(400) % 10, torch.arange(400)

    def voices(without):
        return [bank.voices[i] for i in audio.pick_clips(labels, ids, "train", 0, without).tolist()]

    everything = voices(())
    assert any(":w" in v and not v.endswith(":w1.0") for v in everything)  # warped recorded voices
    assert all(":w" not in v for v in voices(("recorded-voices",)))  # espeak-ng alone
    no_warps = voices(("warps",))
    assert any(":w" in v for v in no_warps) and all(v.endswith(":w1.0") for v in no_warps if ":w" in v)


def test_spoken_digits_without_the_recording_chain_are_the_clean_gap_0_renders():
    labels, ids = torch.arange(20) % 10, torch.arange(20)
    clean = audio.render_waveforms(labels, ids, "train", 0, gap=0.0)
    assert torch.equal(audio.render_waveforms(labels, ids, "train", 0, 0.3, ("recording-chain",)), clean)
    assert not torch.equal(audio.render_waveforms(labels, ids, "train", 0, 0.3), clean)


def test_a_variant_pair_renders_its_own_training_pairs_and_shares_validation_and_test():
    full, variant = pairs.load_pair("digits-sketch"), pairs.load_pair(ALL_SKETCH)
    for split in ("val", "test"):
        assert torch.equal(variant.split(split).target, full.split(split).target)
        assert torch.equal(variant.split(split).ids, full.split(split).ids)
    assert torch.equal(variant.pairs.ids, full.pairs.ids)
    assert (variant.pairs.target != full.pairs.target).flatten(1).any(1).float().mean() > 0.5


def _made_up_run(variant, seed, validation, drawn):
    return {"study": "ingredients", "config": {"pair": variant, "seed": seed},
            "metrics": {"validation": {"head": validation}, "checks": {"drawn_styles": drawn}}}


def test_contributions_pair_seeds_and_say_helps_only_when_the_corrected_interval_excludes_0():
    plan = ingredients.Plan(pairs=("digits-sketch",), seeds=(0, 1, 2, 3, 4), single=False)
    noise = [0.001, -0.002, 0.0015, 0.0, -0.001]
    runs = [_made_up_run("digits-sketch", seed, 0.8 + noise[seed], 0.7 + noise[seed]) for seed in plan.seeds]
    runs += [_made_up_run(ALL_SKETCH, seed, 0.8 + noise[seed] - 0.05 + noise[4 - seed] / 3,
                          0.7 + noise[(seed + 2) % 5]) for seed in plan.seeds]
    rows = {row["measure"]: row for row in ingredients.contributions(runs, plan)}
    assert rows["validation"]["left_out"] == "all" and rows["validation"]["n"] == 5
    assert rows["validation"]["verdict"] == "beats" and rows["validation"]["ci_low"] > 0
    assert rows["drawn_styles"]["verdict"] == "ties"
    assert "| digits-sketch | all | validation accuracy | +0.050 |" in ingredients.contribution_table(
        list(rows.values()))
    assert "helps" in ingredients.contribution_table([rows["validation"]])


def test_quick_ingredients_benchmark_scores_every_arm_on_validation_only(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["bench", "ingredients", "--quick", "--out", str(out)]) == 0
    report = json.loads((out / "ingredients.json").read_text())
    assert report["benchmark"] == "ingredients"
    assert report["command"].startswith("cmcd bench ingredients --quick")
    assert sorted((r["config"]["pair"], r["config"]["seed"]) for r in report["runs"]) == [
        ("digits-sketch", 0), ("digits-sketch", 1), (ALL_SKETCH, 0), (ALL_SKETCH, 1)]
    for run in report["runs"]:
        assert run["config"]["method"] == report["recipes"]["digits-sketch"]["method"]
        assert "accuracy" not in run["metrics"]  # the test split is never scored
        assert 0 <= run["metrics"]["validation"]["head"] <= 1
        assert 0 <= run["metrics"]["checks"]["drawn_styles"] <= 1
    assert [arm["left_out"] for arm in report["arms"]] == ["full recipe", "all"]
    assert {row["measure"] for row in report["contributions"]} == {"validation", "drawn_styles"}
    assert all(row["n"] == 2 for row in report["contributions"])
    written = (out / "ingredients.md").read_text()
    assert "| digits-sketch | all | validation accuracy |" in written
    assert written in capsys.readouterr().out
