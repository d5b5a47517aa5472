"""Modalities are records in one registry: each registered one renders, encodes, augments and
draws itself, and a new modality defined here alone runs end to end through the public API."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cmcd.data import geometry
from cmcd.data.inputs import check_file, open_image
from cmcd.eval.classify import classify_files
from cmcd.modalities import MODALITIES, Modality, Pairing, RenderRequest, get_modality, pairs
from cmcd.modalities.encoders import ImageEncoder
from cmcd.train.config import DistillConfig
from cmcd.train.distill import distill
from cmcd.train.run_files import save_run
from cmcd.viz.contact_sheet import contact_sheet

# --- a toy modality: edge maps of the glyph, defined in this test alone ----------------------------

class EdgeInput(nn.Module):
    out_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


def render_edges(request: RenderRequest) -> torch.Tensor:
    glyph = geometry.to_canvas(request.images)
    dx = F.pad(glyph[..., :, 1:] - glyph[..., :, :-1], (0, 1))
    dy = F.pad(glyph[..., 1:, :] - glyph[..., :-1, :], (0, 0, 0, 1))
    return (dx.square() + dy.square()).sqrt().clamp(0, 1)


def load_edges(path) -> torch.Tensor:
    grey = np.asarray(open_image(check_file(path)).convert("L").resize((32, 32)), dtype=np.float32)
    return torch.from_numpy(grey / 255.0)[None]


def edges_picture(sample: torch.Tensor) -> np.ndarray:
    grey = (sample[0].clamp(0, 1) * 255).round().byte()
    return grey[..., None].repeat(1, 1, 3).numpy()


EDGES = Modality(name="edges", render=render_edges, adapter=EdgeInput, encoder=ImageEncoder,
                 to_picture=edges_picture, load_file=load_edges,
                 augment=lambda x, generator: x, gap_meaning="none", pairs=(Pairing("digits", "instance"),))


@pytest.fixture
def edges_registered(monkeypatch):
    """The one registration line (undone after the test): the modality's pairs come with it."""
    monkeypatch.setitem(MODALITIES, "edges", EDGES)


def test_a_new_modality_runs_end_to_end_through_the_public_api(edges_registered, tmp_path):
    assert pairs.get_spec("digits-edges").target is EDGES
    data = pairs.load_pair("digits-edges")
    assert data.test.target.shape[1:] == (1, 32, 32)
    assert data.test.target.max() > 0.5  # edges are drawn, not a blank canvas

    run = distill(DistillConfig(pair="digits-edges", method="cmc", epochs=1, n_pairs=2048,
                                batch_size=128, width=8))
    losses = [entry["loss"] for entry in run.history]
    assert run.metrics["pair"] == "digits-edges" and losses[-1] < losses[0]  # it learns
    out = save_run(run, tmp_path / "run")

    picture = Image.fromarray(edges_picture(data.test.target[0]))
    picture.save(tmp_path / "edge.png")
    [result] = classify_files("digits-edges", [tmp_path / "edge.png"], out)
    assert result["label"] in data.class_names and abs(sum(result["probs"].values()) - 1) < 1e-3

    sheet = contact_sheet(data)
    assert sheet.width > 300 and sheet.height > 300


# --- every registered modality ---------------------------------------------------------------------

@pytest.mark.parametrize("name", list(pairs.PAIRS))
def test_each_pairs_target_renders_encodes_augments_and_draws(name):
    spec = pairs.get_spec(name)
    data = pairs.load_pair(name)
    samples = data.test.target[:8]
    encoder = spec.target.build_encoder(width=8).eval()
    assert encoder(samples).shape == (8, 128)
    augmented = spec.target.augment(samples, torch.Generator().manual_seed(0))
    assert augmented.shape == samples.shape and not torch.equal(augmented, samples)
    picture = spec.target.to_picture(samples[0])
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    photo = spec.source.to_picture(data.test.source[0])
    assert photo.shape == (32, 32, 3) and photo.dtype == np.uint8


def test_every_modality_is_found_by_name_and_an_unknown_one_lists_them():
    for name, modality in MODALITIES.items():
        assert get_modality(name) is modality and str(modality) == name
    with pytest.raises(ValueError) as error:
        get_modality("lidar")
    assert all(name in str(error.value) for name in MODALITIES)


def test_pairs_refer_to_registered_modalities():
    for spec in pairs.PAIRS.values():
        assert MODALITIES[spec.target.name] is spec.target
        assert MODALITIES[spec.source.name] is spec.source
