"""Distillation losses and encoders, checked against values worked out by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from cmcd.modalities import build_encoder, encoder_from_config, get_modality
from cmcd.modalities.encoders import ImageEncoder, ProjectionHead
from cmcd.train.losses import LOSSES, CRDLoss, CRDOptions, build_loss, sample_negatives

ALL_LOSSES = {"cmc", "cmd", "l2", "crd", "socket", "cmc+l2", "rkd", "pkt", "affinity"}
# Options under which each loss reads the bank (losses that never read it take none).
BANK_OPTIONS = {"cmc": {"negatives": "bank"}, "cmd": {"negatives": "bank"},
                "cmc+l2": {"negatives": "bank"}, "crd": {"num_negatives": 64}}


def unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def bank_holding(teacher, bank_size=300, seed=1):
    """A bank of random unit vectors with the batch's teacher embeddings at random positions."""
    index = torch.randperm(bank_size, generator=torch.Generator().manual_seed(seed))[:len(teacher)]
    bank = unit(bank_size, teacher.shape[1], seed=seed + 1)
    bank[index] = teacher
    return bank, index


# ---------------------------------------------------------------------------------------------
# Registry


def test_registry_lists_every_loss():
    assert {name for name, loss in LOSSES.items() if loss.task == "recognition"} == ALL_LOSSES
    for name in LOSSES:
        assert build_loss(name).name == name


def test_unknown_loss_is_rejected_with_the_valid_names():
    with pytest.raises(ValueError) as error:
        build_loss("kd-with-typo")
    for name in ALL_LOSSES:
        assert name in str(error.value)


def test_bank_losses_ask_for_the_bank():
    teacher = unit(8, 16)
    for name, options in BANK_OPTIONS.items():
        with pytest.raises(ValueError, match="bank"):
            build_loss(name, **options)(teacher, teacher)


# ---------------------------------------------------------------------------------------------
# CMC


def test_cmc_of_identical_embeddings_is_near_zero():
    teacher = unit(16, 128)
    loss = build_loss("cmc", temperature=0.01, learn_temperature=False)
    assert loss(teacher * 5.0, teacher)["cmc"].item() < 1e-3  # the student is normalised inside


def test_cmc_of_random_embeddings_is_about_log_n():
    student, teacher = unit(64, 128, seed=1), unit(64, 128, seed=2)
    # τ = 1 keeps every logit within ±1 and random unit vectors near 0: about log 64
    near = build_loss("cmc", temperature=1.0, learn_temperature=False)(student, teacher)["cmc"]
    assert abs(near.item() - math.log(64)) < 0.05
    # a very large τ flattens every logit: log N exactly
    flat = build_loss("cmc", temperature=1e4, learn_temperature=False)(student, teacher)["cmc"]
    assert flat.item() == pytest.approx(math.log(64), abs=1e-3)


def test_cmc_is_the_symmetric_cross_entropy():
    student, teacher = torch.randn(10, 32), unit(10, 32, seed=3)
    v = F.normalize(student, dim=1)
    labels = torch.arange(10)
    by_hand = (F.cross_entropy(v @ teacher.T / 0.5, labels)
               + F.cross_entropy(teacher @ v.T / 0.5, labels)) / 2
    loss = build_loss("cmc", temperature=0.5, learn_temperature=False)
    assert loss(student, teacher)["cmc"].item() == pytest.approx(by_hand.item(), abs=1e-5)


def test_cmc_with_the_batch_as_bank_equals_in_batch_cmc():
    student, teacher = torch.randn(12, 32), unit(12, 32, seed=4)
    batch = build_loss("cmc")(student, teacher)["cmc"]
    bank_loss = build_loss("cmc", negatives="bank")
    banked = bank_loss(student, teacher, index=torch.arange(12), bank=teacher)["cmc"]
    assert banked.item() == pytest.approx(batch.item(), abs=1e-5)


def test_cmc_temperature_starts_at_007_is_learnable_and_capped():
    loss = build_loss("cmc", temperature=0.07, learn_temperature=True)
    assert loss.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-5)
    assert [name for name, _ in loss.named_parameters()] == ["log_logit_scale"]
    with torch.no_grad():
        loss.log_logit_scale.fill_(math.log(1000.0))
    assert loss.logit_scale.item() == pytest.approx(100.0)
    assert list(build_loss("cmc", learn_temperature=False).parameters()) == []


def test_cmc_reuses_its_labels_per_device():
    loss = build_loss("cmc")
    teacher = unit(8, 16)
    loss(teacher, teacher)
    labels = loss.diagonal.by_device[teacher.device]
    loss(teacher, teacher)
    assert loss.diagonal.by_device[teacher.device] is labels
    assert loss(unit(5, 16), unit(5, 16, seed=9))["cmc"].isfinite()  # a smaller last batch


# ---------------------------------------------------------------------------------------------
# CMD


def test_cmd_with_one_hot_targets_is_one_way_infonce():
    teacher = torch.eye(32)[:16]  # orthogonal teacher embeddings: u_i·u_j = 0 off the diagonal
    student = torch.randn(16, 32, generator=torch.Generator().manual_seed(5))
    loss = build_loss("cmd", teacher_temperature=1e-3, student_temperature=0.2)  # τ_T → 0: one-hot P
    v = F.normalize(student, dim=1)
    infonce = F.cross_entropy(v @ teacher.T / 0.2, torch.arange(16))
    assert loss(student, teacher)["cmd"].item() == pytest.approx(infonce.item(), abs=1e-5)

    bank, index = torch.eye(32), torch.arange(16) * 2  # the positives spread over a larger bank
    banked = build_loss("cmd", teacher_temperature=1e-3, student_temperature=0.2, negatives="bank")
    infonce_over_bank = F.cross_entropy(v @ bank.T / 0.2, index)
    terms = banked(student, bank[index], index=index, bank=bank)
    assert terms["cmd"].item() == pytest.approx(infonce_over_bank.item(), abs=1e-5)


def test_cmd_rejects_a_teacher_temperature_above_the_students():
    with pytest.raises(ValueError, match="teacher_temperature"):
        build_loss("cmd", teacher_temperature=0.2, student_temperature=0.1)


# ---------------------------------------------------------------------------------------------
# L2 and SOCKET


def test_l2_by_hand():
    teacher = unit(8, 16)
    assert build_loss("l2")(teacher * 3.0, teacher)["l2"].item() == pytest.approx(0.0, abs=1e-6)
    student = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    teacher = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # normalised: (0.6, 0.8) vs (1, 0) gives 0.16 + 0.64 = 0.8; (0, 1) vs (0, 1) gives 0; mean 0.4
    assert build_loss("l2")(student, teacher)["l2"].item() == pytest.approx(0.4)
    # raw: (2, 4) -> 20 and (0, 1) -> 1; mean 10.5
    assert build_loss("l2", normalize=False)(student, teacher)["l2"].item() == pytest.approx(10.5)


def test_socket_is_l2_plus_a_spread_term_that_vanishes_where_spreads_agree():
    teacher = unit(32, 16)
    assert all(t.item() < 1e-6 for t in build_loss("socket")(teacher, teacher).values())
    # a student at the teacher's reflection: every pair 2 apart, per-channel spreads equal
    terms = build_loss("socket")(-teacher, teacher)
    assert set(terms) == {"l2", "spread"}
    assert terms["l2"].item() == pytest.approx(4.0, rel=1e-5)
    assert terms["spread"].item() == pytest.approx(0.0, abs=1e-6)
    # raw student at twice the teacher: each channel's spread doubles, so the gap is Σ σ_c²
    doubled = build_loss("socket", normalize=False, stats_weight=0.5)(2 * teacher, teacher)
    assert doubled["spread"].item() == pytest.approx(0.5 * teacher.var(0, correction=0).sum().item(),
                                                     rel=1e-5)


def test_socket_weighs_the_mean_gap_once_as_l2_does():
    """L2 already holds the mean gap exactly (L2 = ‖μ_v − μ_u‖² + centred L2); the spread term
    adds none of it: moving the whole batch changes only the L2 term. A second mean term made
    students collapse onto the teacher's common direction (see SocketLoss)."""
    student, teacher = torch.randn(64, 16), unit(64, 16, seed=4)
    l2 = build_loss("l2", normalize=False)(student, teacher)["l2"]
    centred = (student - student.mean(0)) - (teacher - teacher.mean(0))
    mean_gap = (student.mean(0) - teacher.mean(0)).pow(2).sum()
    assert l2.item() == pytest.approx((mean_gap + centred.pow(2).sum(1).mean()).item(), rel=1e-5)
    loss = build_loss("socket", normalize=False, stats_weight=3.0)
    shift = torch.randn(16)
    assert loss(student + shift, teacher)["spread"].item() == pytest.approx(
        loss(student, teacher)["spread"].item(), rel=1e-4)
    plain = build_loss("socket", stats_weight=0.0)(student, teacher)
    assert sum(plain.values()).item() == pytest.approx(build_loss("l2")(student, teacher)["l2"].item())


def test_cmc_plus_l2_weights_its_l2_term():
    student, teacher = torch.randn(8, 16), unit(8, 16, seed=6)
    terms = build_loss("cmc+l2", l2_weight=0.25, learn_temperature=False)(student, teacher)
    cmc_alone = build_loss("cmc", learn_temperature=False)(student, teacher)["cmc"]
    assert terms["cmc"].item() == pytest.approx(cmc_alone.item())
    assert terms["l2"].item() == pytest.approx(0.25 * build_loss("l2")(student, teacher)["l2"].item())


# ---------------------------------------------------------------------------------------------
# RKD, PKT, affinity mimicking: three points on the unit circle, worked out by hand

TRIANGLE = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # the teacher's three items


def test_rkd_by_hand():
    # The student is the same right isosceles triangle with its right angle at another item:
    # (1,0), (0,1), (0,-1). Both have mean pair distance (2 + 2√2)/3.
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    terms = build_loss("rkd", distance_weight=2.0, angle_weight=3.0, l2_weight=0.5,
                       angle_items=None)(student, TRIANGLE)
    # distances: pairs 1-3 and 2-3 swap √2 and 2 (4 of the 6 ordered pairs), Huber x²/2 below 1
    x = (2 - math.sqrt(2)) / ((2 + 2 * math.sqrt(2)) / 3)
    assert terms["rkd_distance"].item() == pytest.approx(2.0 * (4 * x * x / 2) / 6, rel=1e-5)
    # angles: the teacher's cosines at items 1, 2, 3 are 1/√2, 0, 1/√2, the student's 0, 1/√2, 1/√2;
    # each vertex has two ordered (j, k) with j ≠ k, Huber (1/√2)²/2 = 1/4, over all 27 triplets
    assert terms["rkd_angle"].item() == pytest.approx(3.0 * 4 * 0.25 / 27, rel=1e-5)
    # L2: only item 3 moved, by (1, -1)
    assert terms["l2"].item() == pytest.approx(0.5 * 2 / 3, rel=1e-6)


def test_rkd_relations_ignore_a_rotation_and_its_angles_read_the_first_items():
    teacher = unit(6, 4, seed=3)
    rotation = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(4)))[0]
    terms = build_loss("rkd", angle_items=None)(teacher @ rotation, teacher)
    assert terms["rkd_distance"].item() < 1e-6 and terms["rkd_angle"].item() < 1e-6
    assert terms["l2"].item() > 0.1  # the rotation moved the student out of the teacher's space
    student = unit(6, 4, seed=5)
    first = build_loss("rkd", angle_items=3)(student, teacher)["rkd_angle"]
    assert first.item() == pytest.approx(build_loss("rkd", angle_items=None)(
        student[:3], teacher[:3])["rkd_angle"].item(), rel=1e-6)


def test_pkt_by_hand():
    # Kernel (1 + cos)/2 over j ≠ i. Teacher rows p(.|i): (1, 0), (1/2, 1/2), (0, 1);
    # student (1,0), (1,0), (0,1): q(.|i) = (2/3, 1/3), (2/3, 1/3), (1/2, 1/2).
    student = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    terms = build_loss("pkt", pkt_weight=2.0, l2_weight=0.5)(student, TRIANGLE)
    divergence = (math.log(1.5) + 0.5 * math.log(0.75) + 0.5 * math.log(1.5) + math.log(2)) / 3
    assert terms["pkt"].item() == pytest.approx(2.0 * divergence, rel=1e-5)
    assert terms["l2"].item() == pytest.approx(0.5 * 4 / 3, rel=1e-6)  # items 2 and 3 moved by √2


def test_affinity_by_hand():
    # Teacher (1,0), (0,1); student (1,0), (1,0); τ = 1. The teacher's affinity rows are
    # softmax(1, 0) = (a, b) and (b, a). Student→teacher rows are both (a, b); teacher→student rows
    # are uniform (the two students coincide), so that direction costs log 2 per row.
    teacher = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    student = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    a, b = math.e / (math.e + 1), 1 / (math.e + 1)
    target_to_source = (-(a * math.log(a) + b * math.log(b)) - (b * math.log(a) + a * math.log(b))) / 2
    expected = (target_to_source + math.log(2)) / 2
    assert build_loss("affinity", temperature=1.0)(student, teacher)["affinity"].item() == \
        pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Bank losses (CRD, CMC and CMD against the bank)


def test_negatives_never_hit_the_positive_and_cover_the_bank():
    index = torch.tensor([0, 5, 9])
    drawn = sample_negatives(index, 10, 2000, torch.Generator().manual_seed(0))
    assert drawn.shape == (3, 2000)
    assert not (drawn == index[:, None]).any()
    for row, positive in zip(drawn, index, strict=True):
        assert set(row.tolist()) == set(range(10)) - {positive.item()}


@pytest.mark.parametrize("name", sorted(BANK_OPTIONS))
def test_bank_losses_decrease_as_the_student_moves_to_the_teacher(name):
    teacher = unit(32, 64, seed=7)
    bank, index = bank_holding(teacher)
    start = unit(32, 64, seed=8)
    values = []
    for step in (0.0, 0.5, 1.0):
        loss = build_loss(name, **BANK_OPTIONS[name])
        if name == "crd":
            loss.generator = torch.Generator().manual_seed(0)  # the same negatives at each step
        terms = loss((1 - step) * start + step * teacher, teacher, index=index, bank=bank)
        values.append(sum(terms.values()).item())
    assert values[0] > values[1] > values[2], values


def test_crd_clamps_its_negatives_to_the_bank():
    teacher = unit(4, 8)
    bank, index = bank_holding(teacher, bank_size=6)
    assert build_loss("crd")(torch.randn(4, 8), teacher, index=index, bank=bank)["crd"].isfinite()


# ---------------------------------------------------------------------------------------------
# Only the student learns


@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_gradients_reach_only_the_student(name):
    teacher = unit(16, 32, seed=10)
    bank, index = bank_holding(teacher, bank_size=100)
    teacher.requires_grad_(True)
    bank.requires_grad_(True)
    student = torch.randn(16, 32, requires_grad=True)
    loss = build_loss(name, **BANK_OPTIONS.get(name, {}))
    sum(loss(student, teacher, index=index, bank=bank).values()).backward()
    assert teacher.grad is None and bank.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0
    for parameter in loss.parameters():
        assert parameter.grad is not None


def test_crd_projection_learns_and_leaves_the_teacher_alone():
    teacher = unit(16, 32, seed=12)
    bank, index = bank_holding(teacher, bank_size=100)
    teacher.requires_grad_(True)
    loss = CRDLoss(CRDOptions(projection_dim=8, num_negatives=64), embed_dim=32)
    loss(torch.randn(16, 32), teacher, index=index, bank=bank)["crd"].backward()
    assert teacher.grad is None
    assert all(p.grad is not None for p in loss.parameters()) and len(list(loss.parameters())) == 4


# ---------------------------------------------------------------------------------------------
# Encoders

RAW_INPUTS = {
    "rgb": lambda n: torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8),
    "sketch": lambda n: torch.rand(n, 1, 32, 32),
    "depth": lambda n: torch.rand(n, 1, 32, 32) * (torch.rand(n, 1, 32, 32) > 0.1),
    "audio": lambda n: torch.randn(n, 1, 40, 40),
}


@pytest.mark.parametrize("modality", sorted(RAW_INPUTS))
def test_encoder_embeds_its_modality_and_rebuilds_from_config(modality):
    encoder = build_encoder(modality, width=8)
    x = RAW_INPUTS[modality](4)
    assert encoder(x).shape == (4, 128)
    assert encoder.config["modality"] == modality and encoder.config["width"] == 8
    rebuilt = encoder_from_config(encoder.config)
    assert type(rebuilt) is type(encoder)
    rebuilt.load_state_dict(encoder.state_dict(), strict=True)
    encoder.eval(), rebuilt.eval()
    assert torch.allclose(rebuilt(x), encoder(x))


def test_image_encoder_takes_32_and_40_pixel_inputs():
    encoder = ImageEncoder(1, width=8, embed_dim=16)
    assert encoder(torch.rand(2, 1, 32, 32)).shape == encoder(torch.rand(2, 1, 40, 40)).shape == (2, 16)
    assert encoder_from_config(encoder.config).config == encoder.config


def test_unknown_modality_is_rejected_with_the_valid_ones():
    with pytest.raises(ValueError) as error:
        build_encoder("lidar")
    for modality in RAW_INPUTS:
        assert modality in str(error.value)


def test_input_adapters():
    assert get_modality("sketch").prepare(torch.ones(1, 1, 4, 4)).abs().max() == 0  # white paper is zero
    assert get_modality("sketch").prepare(torch.zeros(1, 1, 4, 4)).min() == 1  # ink is positive
    depth = get_modality("depth").prepare(torch.tensor([[[[0.0, 0.7]]]]))
    assert depth.shape == (1, 2, 1, 2)
    assert depth[0, 1].tolist() == [[0.0, 1.0]]  # the validity channel
    assert depth[0, 0, 0, 0] == 0  # a hole reads as the typical depth, not as a distance
    photo = get_modality("rgb").prepare(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))
    assert photo.dtype == torch.float32 and photo.min() > 2  # standardised: white is far above the mean


def test_projection_head_shape():
    assert ProjectionHead()(torch.randn(5, 128)).shape == (5, 64)


@pytest.fixture
def one_thread():
    """One intra-op thread: on a small shared machine two threads that wait on each other while
    another process holds a core run this step ten times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_an_encoder_can_fit_cmc(one_thread):
    torch.manual_seed(0)
    teacher = unit(256, 128, seed=11)
    images = torch.rand(256, 1, 32, 32)
    encoder = build_encoder("sketch", width=8)
    loss = build_loss("cmc", temperature=0.07, learn_temperature=True)
    optimizer = torch.optim.Adam([*encoder.parameters(), *loss.parameters()], lr=3e-3)
    values = []
    for _ in range(30):
        value = loss(encoder(images), teacher)["cmc"]
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        values.append(value.item())
    assert values[-1] < 0.7 * values[0], values
