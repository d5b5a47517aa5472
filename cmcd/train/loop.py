"""The one training loop of cmcd: distillation, SimCLR pre-training, fine-tuning, the teachers'
linear heads and the speed benchmark's reference all step through `train_loop`.

A step is a callable `(batch) -> {name: loss term}` (the trainer's method returns named terms; the
loop sums them). The loop owns the rest: AdamW over the trainable parameters of the given modules,
the learning-rate schedule (a `LambdaLR` factor per optimiser step), mixed precision, the step
limit, cancelling, and the callbacks for step events, epoch events and validation.

Batches are any re-iterable (iterated once per epoch), typically a `BatchSampler`: a fresh random
permutation per epoch from an explicit generator, so no process-wide random state is touched.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from cmcd import runtime

Step = Callable[[Any], dict[str, Tensor]]


# --- learning-rate factors (multiplying the base lr at optimiser step s, counted from 0) -------------

def constant(step: int) -> float:
    return 1.0


def warmup_cosine(total_steps: int, warmup: int = 0) -> Callable[[int], float]:
    """Linear warm-up over `warmup` steps, then a cosine from 1 down to 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


# --- batches ---------------------------------------------------------------------------------------

class BatchSampler:
    """Index batches over `n` items: a new random permutation each epoch, drawn from `generator`
    (on its device). The last incomplete batch is dropped; fewer items than a batch make one
    batch of all of them."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        if n < 1 or batch_size < 1:
            raise ValueError(f"need at least one item and a batch size of at least 1; got {n}, {batch_size}")
        self.n, self.batch_size, self.generator = n, min(batch_size, n), generator

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __iter__(self) -> Iterator[Tensor]:
        order = torch.randperm(self.n, generator=self.generator, device=self.generator.device)
        for b in range(len(self)):
            yield order[b * self.batch_size: (b + 1) * self.batch_size]


# --- the data-parallel seam ------------------------------------------------------------------------

class SingleProcess:
    """How training spreads over processes: here, not at all. Data-parallel training plugs in by
    replacing this object (`cmcd.train.parallel.DataParallel`): `wrap_model` returns a
    DistributedDataParallel module (trainers build their step around the wrapped model), `shard`
    keeps this rank's share of each epoch's batches, `reduce` averages the logged loss terms
    across ranks."""

    world_size = 1

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return model

    def shard(self, batches: Iterable) -> Iterable:
        return batches

    def reduce(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        return terms

    def close(self) -> None:
        """Leave the process group, when there is one."""


# --- the loop --------------------------------------------------------------------------------------

@dataclass
class LoopSettings:
    """What is trained and how: AdamW over the modules' trainable parameters."""

    modules: list[nn.Module]  # put in training mode at the start of every epoch
    lr: float
    weight_decay: float
    device: torch.device
    lr_factor: Callable[[int], float] = constant
    mixed_precision: bool = True  # runtime.autocast around each step (bf16 on CUDA)
    max_steps: int | None = None
    strategy: SingleProcess = field(default_factory=SingleProcess)  # or parallel.DataParallel

    def parameters(self) -> list[nn.Parameter]:
        return [p for module in self.modules for p in module.parameters() if p.requires_grad]

    def autocast(self):
        return runtime.autocast(self.device) if self.mixed_precision else contextlib.nullcontext()



def distillation_settings(modules: list[nn.Module], lr: float, total_steps: int, device: torch.device,
                          **extra) -> LoopSettings:
    """How both distillations (recognition and segmentation) train: AdamW with weight decay 5e-4,
    a linear warm-up over min(50, a tenth of the steps), then a cosine down to 0."""
    return LoopSettings(modules, lr, weight_decay=5e-4, device=device, max_steps=total_steps,
                        lr_factor=warmup_cosine(total_steps, warmup=min(50, total_steps // 10)), **extra)

@dataclass
class StepDone:
    step: int  # optimiser steps done so far, this one included
    epoch: int  # counted from 1
    loss: Tensor  # the sum of the terms (still on the device: call .item() only when logging)
    terms: dict[str, Tensor]
    lr: float  # the learning rate this step ran at


@dataclass
class Hooks:
    on_step: Callable[[StepDone], None] | None = None
    on_epoch: Callable[[int], None] | None = None  # after every epoch, before any validation
    validate: Callable[[int], None] | None = None  # see train_loop for when
    validate_every: int = 1
    should_stop: Callable[[], bool] | None = None  # polled after every step


@dataclass
class LoopResult:
    steps: int = 0
    epochs: int = 0  # epochs started
    cancelled: bool = False


class _Optimiser:
    """AdamW and its schedule. LambdaLR sets lr = base * factor(0) at once and base * factor(s)
    after the s-th step, so optimiser step s (counted from 0) always runs at base * factor(s)."""

    def __init__(self, settings: LoopSettings):
        self.adamw = torch.optim.AdamW(settings.parameters(), lr=settings.lr,
                                       weight_decay=settings.weight_decay)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.adamw, settings.lr_factor)

    def step(self, loss: Tensor) -> float:
        """One optimiser step on `loss`; returns the learning rate it ran at."""
        lr = self.adamw.param_groups[0]["lr"]
        self.adamw.zero_grad(set_to_none=True)
        loss.backward()
        self.adamw.step()
        self.schedule.step()
        return lr


class _Loop:
    def __init__(self, step: Step, settings: LoopSettings, hooks: Hooks):
        self.step, self.settings, self.hooks = step, settings, hooks
        self.optimiser = _Optimiser(settings)
        self.result = LoopResult()

    def run_epoch(self, batches: Iterable, epoch: int) -> bool:
        """One pass over the batches; True when the run ends here (cancelled or at the step limit)."""
        settings, hooks, result = self.settings, self.hooks, self.result
        for module in settings.modules:
            module.train()
        for batch in settings.strategy.shard(batches):
            with settings.autocast():
                terms = self.step(batch)
            loss = sum(terms.values())
            lr = self.optimiser.step(loss)
            result.steps += 1
            if hooks.on_step:
                terms = settings.strategy.reduce(terms)  # every rank's, averaged
                hooks.on_step(StepDone(result.steps, epoch, sum(terms.values()), terms, lr))
            if hooks.should_stop and hooks.should_stop():
                result.cancelled = True
            if result.cancelled or result.steps == settings.max_steps:
                return True
        return False


def train_loop(step: Step, batches: Iterable, epochs: int, settings: LoopSettings,
               hooks: Hooks | None = None) -> LoopResult:
    """Run `epochs` passes over `batches`, fewer when cancelled or at `settings.max_steps`.
    Validation follows every `validate_every`-th epoch, the last one, and one cut short."""
    hooks = hooks or Hooks()
    loop = _Loop(step, settings, hooks)
    for epoch in range(1, epochs + 1):
        loop.result.epochs = epoch
        ends = loop.run_epoch(batches, epoch)
        if hooks.on_epoch:
            hooks.on_epoch(epoch)
        if hooks.validate and (ends or epoch == epochs or epoch % hooks.validate_every == 0):
            hooks.validate(epoch)
        if ends:
            break
    return loop.result
