"""The training loop, its schedule and sampler, seeded initial weights, and runs that share a
process without sharing random state."""

import threading

import pytest
import torch
from torch import nn

from cmcd.modalities import build_encoder
from cmcd.modalities.encoders import ProjectionHead
from cmcd.models.init import initialise
from cmcd.train.config import DistillConfig
from cmcd.train.distill import distill
from cmcd.train.loop import BatchSampler, Hooks, LoopSettings, train_loop, warmup_cosine
from cmcd.train.objectives import build_objective


def _quadratic(target: float = 3.0):
    """A one-parameter model and a step whose loss terms sum to (w - target)^2."""
    weight = nn.Linear(1, 1, bias=False)
    one = torch.ones(1, 1)

    def step(_batch):
        w = weight(one).squeeze()
        return {"half": (w - target) ** 2 / 2, "other_half": (w - target) ** 2 / 2}

    return weight, step


def _settings(model, **options) -> LoopSettings:
    return LoopSettings([model], lr=options.pop("lr", 0.1), weight_decay=0.0,
                        device=torch.device("cpu"), **options)


# Worked out by hand: warm-up rates (step + 1) / warmup, then 0.5 (1 + cos(pi (step - warmup) /
# (total - warmup))), 0 from `total` on; cos(pi/8) = 0.92388, cos(pi/4) = 0.70711, cos(3 pi/8) = 0.38268.
HAND_RATES = {
    (10, 2): [0.5, 1.0, 1.0, 0.96194, 0.85355, 0.69134, 0.5, 0.30866, 0.14645, 0.03806, 0.0, 0.0],
    (4, 0): [1.0, 0.85355, 0.5, 0.14645, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
}


@pytest.mark.parametrize("total, warmup", list(HAND_RATES))
def test_each_step_runs_at_the_warmup_cosine_rate(total, warmup):
    model, step = _quadratic()
    rates = []
    settings = _settings(model, lr=2.0, lr_factor=warmup_cosine(total, warmup))
    train_loop(step, [None] * 4, 3, settings, Hooks(on_step=lambda done: rates.append(done.lr)))
    assert rates == pytest.approx([2.0 * rate for rate in HAND_RATES[total, warmup]], abs=2e-5)


def test_the_loop_sums_the_terms_and_minimises_them():
    model, step = _quadratic(target=3.0)
    losses = []
    train_loop(step, [None] * 50, 4, _settings(model),
               Hooks(on_step=lambda done: losses.append((done.loss.item(), sum(
                   t.item() for t in done.terms.values())))))
    assert all(loss == pytest.approx(total) for loss, total in losses)
    assert model.weight.item() == pytest.approx(3.0, abs=0.05)
    assert losses[-1][0] < losses[0][0] / 100


def test_the_loop_stops_at_the_step_limit_and_validates_the_cut_epoch():
    model, step = _quadratic()
    validated = []
    result = train_loop(step, [None] * 4, 5, _settings(model, max_steps=7),
                        Hooks(validate=validated.append, validate_every=3))
    assert (result.steps, result.epochs, result.cancelled) == (7, 2, False)
    assert validated == [2]


def test_cancel_stops_after_the_polled_step_and_still_validates():
    model, step = _quadratic()
    polls, validated, epochs_done = [], [], []
    result = train_loop(step, [None] * 4, 5, _settings(model),
                        Hooks(validate=validated.append, on_epoch=epochs_done.append,
                              should_stop=lambda: polls.append(1) or len(polls) >= 6))
    assert result.cancelled and result.steps == 6 and len(polls) == 6
    assert epochs_done == [1, 2] and validated == [1, 2]


def test_validation_follows_every_nth_epoch_and_the_last():
    model, step = _quadratic()
    validated = []
    train_loop(step, [None] * 2, 7, _settings(model), Hooks(validate=validated.append, validate_every=3))
    assert validated == [3, 6, 7]


def test_training_mode_is_restored_every_epoch():
    model, step = _quadratic()
    modes = []
    train_loop(lambda batch: (modes.append(model.training), step(batch))[1], [None] * 2, 3,
               _settings(model), Hooks(on_epoch=lambda epoch: model.eval()))
    assert modes == [True] * 6


def test_sampler_draws_a_new_permutation_each_epoch_and_drops_the_last_batch():
    sampler = BatchSampler(10, 3, torch.Generator().manual_seed(0))
    epochs = [torch.cat(list(sampler)) for _ in range(3)]
    assert len(sampler) == 3 and all(len(order) == 9 and len(set(order.tolist())) == 9 for order in epochs)
    assert not torch.equal(epochs[0], epochs[1])
    again = BatchSampler(10, 3, torch.Generator().manual_seed(0))
    assert torch.equal(torch.cat(list(again)), epochs[0])
    assert [len(b) for b in BatchSampler(5, 8, torch.Generator())] == [5]


# --- initial weights -------------------------------------------------------------------------------

def test_initial_weights_follow_the_generator_and_leave_the_global_stream_alone():
    encoders = [build_encoder("sketch", width=8) for _ in range(3)]
    state = torch.get_rng_state()
    for encoder, seed in zip(encoders, (1, 1, 2), strict=True):
        initialise(encoder, torch.Generator().manual_seed(seed))
    assert torch.equal(torch.get_rng_state(), state)
    first, second = (encoder.state_dict().values() for encoder in encoders[:2])
    same = [torch.equal(a, b) for a, b in zip(first, second, strict=True)]
    assert all(same)
    assert not torch.equal(encoders[0].fc.weight, encoders[2].fc.weight)


@pytest.mark.parametrize("make", [lambda: build_encoder("sketch", width=8),
                                  lambda: build_encoder("audio", width=8),
                                  lambda: ProjectionHead(128)])
def test_initial_weights_are_pytorchs_defaults_drawn_from_the_generator(make):
    torch.manual_seed(7)
    by_default = make()
    module = make()  # built from the advanced global stream: different weights until initialised
    initialise(module, torch.Generator().manual_seed(7))
    for name, value in by_default.state_dict().items():
        assert torch.equal(module.state_dict()[name], value), name


def test_batch_norms_restart_at_weight_one_bias_zero():
    head = ProjectionHead(16, hidden=32)
    with torch.no_grad():
        head.net[1].weight.fill_(3.0)
        head.net[1].bias.fill_(2.0)
    initialise(head, torch.Generator().manual_seed(0))
    assert torch.equal(head.net[1].weight, torch.ones(32)) and torch.equal(head.net[1].bias, torch.zeros(32))


def test_frozen_layers_keep_their_weights():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    model[1].requires_grad_(False)
    frozen = model[1].weight.clone()
    trained = model[0].weight.clone()
    initialise(model, torch.Generator().manual_seed(3))
    assert torch.equal(model[1].weight, frozen) and not torch.equal(model[0].weight, trained)


def test_crd_draws_its_negatives_from_the_runs_generator():
    generator = torch.Generator().manual_seed(0)
    objective = build_objective(DistillConfig(method="crd"), teacher=None, modality="sketch",
                                generator=generator)
    assert objective.loss.generator is generator


# --- runs side by side -----------------------------------------------------------------------------

TIMINGS = {"wall_s", "train_s", "validation_s", "pairs_per_s", "cpu_s"}


def _tiny_run(seed: int):
    run = distill(DistillConfig(pair="digits-sketch", epochs=1, n_pairs=512, batch_size=128, width=8,
                                seed=seed, device="cpu"))
    metrics = {k: v for k, v in run.metrics.items() if k not in TIMINGS}
    history = [{k: v for k, v in entry.items() if k != "elapsed_s"} for entry in run.history]
    return metrics, history, run.student.state_dict()


def test_two_runs_in_two_threads_equal_the_same_runs_alone():
    alone = {seed: _tiny_run(seed) for seed in (1, 2)}
    side_by_side = {}
    threads = [threading.Thread(target=lambda s=seed: side_by_side.__setitem__(s, _tiny_run(s)))
               for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert alone[1][0] != alone[2][0]  # the seeds matter, so equality below means something
    for seed in (1, 2):
        metrics, history, weights = side_by_side[seed]
        assert metrics == alone[seed][0] and history == alone[seed][1]
        assert all(torch.equal(weights[name], alone[seed][2][name]) for name in weights)
