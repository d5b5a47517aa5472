"""Step 2: cross-modality distillation (`cmcd distill`).

The frozen teacher's embeddings of every pair are computed once and cached; the training loop
touches only the student. Target inputs live on the training device for the whole run and are
augmented there in batches. Each method is an objective (a small module returning named loss
terms): the distillation losses of `cmcd.train.losses`, plus the references `random` (no training),
`target-ssl` (SimCLR on the target alone) and `supervised` (all target labels: the upper bound).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from cmcd.data import pairs
from cmcd.eval.classify import real_samples_accuracy
from cmcd.eval.metrics import class_prototypes, evaluate, zero_label_accuracy
from cmcd.modalities import build_encoder
from cmcd.models.embed import embed
from cmcd.models.teacher import load_teacher
from cmcd.train import runtime
from cmcd.train.config import DistillConfig
from cmcd.train.objectives import Batch, build_objective
from cmcd.train.teacher_cache import teacher_embeddings


@dataclass
class DistillRun:
    config: DistillConfig
    device: str
    history: list[dict] = field(default_factory=list)  # per logged step
    val_history: list[dict] = field(default_factory=list)  # per epoch
    metrics: dict = field(default_factory=dict)
    student: nn.Module | None = None
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # test split
    cancelled: bool = False


# --- training --------------------------------------------------------------------------------------

def _choose_pairs(total: int, n_pairs: int | None, seed: int) -> torch.Tensor:
    if n_pairs is None or n_pairs >= total:
        return torch.arange(total)
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be at least 1; got {n_pairs}")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:n_pairs].sort().values


MAX_VALIDATIONS = 10  # per run: many tiny epochs (a small pair budget) are validated now and then


def _schedule(config: DistillConfig, steps_per_epoch: int, trains: bool) -> tuple[int, int]:
    """(epochs, total optimiser steps): `steps` when given, else whole epochs."""
    if not trains:
        return 0, 0
    if config.steps is None:
        return config.epochs, config.epochs * steps_per_epoch
    if config.steps < 1:
        raise ValueError(f"steps must be at least 1; got {config.steps}")
    return math.ceil(config.steps / steps_per_epoch), config.steps


def distill(config: DistillConfig,
            progress: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> DistillRun:
    """Distil a student for `config.pair`; `progress` gets a dict per logged step and per epoch,
    `should_stop` is polled every step (cancelling still evaluates what was trained)."""
    started = time.perf_counter()
    runtime.seed_everything(config.seed)
    device = runtime.resolve_device(config.device)
    data = pairs.load_pair(config.pair, gap=config.gap)
    spec = data.spec
    teacher = load_teacher(spec.dataset, config.teacher)
    embeddings = teacher_embeddings(data, config.teacher, teacher, device)
    objective = build_objective(config, teacher, spec.target)

    chosen = _choose_pairs(len(data.pairs), config.n_pairs, config.seed)
    targets = data.pairs.target[chosen].to(device)
    bank = embeddings["pairs"][chosen].to(device)
    labels = data.pairs.labels[chosen].to(device)
    prototypes = class_prototypes(embeddings["pairs"], data.pairs.labels, len(data.class_names))
    val_prototypes = torch.from_numpy(prototypes).float()

    student = build_encoder(spec.target, width=config.width).to(device)
    run = DistillRun(config, str(device), student=student)
    generator = runtime.generator(device, config.seed)
    batch_size = min(config.batch_size, len(chosen))
    steps_per_epoch = len(chosen) // batch_size
    epochs, total_steps = _schedule(config, steps_per_epoch, objective is not None)
    validate_every = max(1, epochs // MAX_VALIDATIONS)
    log_every = max(1, steps_per_epoch // 8)

    train_started = time.perf_counter()
    samples, validation_seconds = 0, 0.0
    if objective is not None:
        objective.to(device)
        params = list(student.parameters()) + [p for p in objective.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=5e-4)
        step = 0
        for epoch in range(epochs):
            student.train()
            order = torch.randperm(len(chosen), generator=generator, device=device)
            for b in range(steps_per_epoch):
                index = order[b * batch_size: (b + 1) * batch_size]
                runtime.set_lr(optimizer, runtime.cosine_lr(step, total_steps, config.lr,
                                                            warmup=min(50, total_steps // 10)))
                batch = Batch(targets[index], bank[index], index, labels[index], bank, generator)
                with runtime.autocast(device):
                    terms = objective(student, batch)
                loss = sum(terms.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                samples += len(index)
                if step % log_every == 0 or step == total_steps:
                    entry = {"step": step, "total_steps": total_steps, "epoch": epoch + 1,
                             "loss": round(loss.item(), 5),
                             **{k: round(v.item(), 5) for k, v in terms.items()},
                             "elapsed_s": round(time.perf_counter() - train_started, 2)}
                    run.history.append(entry)
                    if progress:
                        progress({"kind": "step", **entry})
                if should_stop and should_stop():
                    run.cancelled = True
                if run.cancelled or step == total_steps:
                    break
            if (epoch + 1) % validate_every and epoch + 1 < epochs and not run.cancelled:
                continue
            validation_started = time.perf_counter()
            val = {"epoch": epoch + 1, **zero_label_accuracy(
                embed(student, data.val.target), data.val.labels, teacher.head, val_prototypes)}
            validation_seconds += time.perf_counter() - validation_started
            run.val_history.append(val)
            if progress:
                progress({"kind": "epoch", **val})
            if run.cancelled:
                break
    train_seconds = time.perf_counter() - train_started - validation_seconds

    student_test = embed(student, data.test.target)
    metrics = evaluate(
        student_test=student_test, teacher_test=embeddings["test"], test_labels=data.test.labels,
        student_val=embed(student, data.val.target), teacher_val=embeddings["val"],
        pool_student=embed(student, targets), pool_labels=data.pairs.labels[chosen],
        head=teacher.head, prototypes=prototypes, pairing=spec.pairing, seed=config.seed)
    run.metrics = {
        "pair": spec.name, "method": config.method, "teacher": config.teacher,
        "seed": config.seed, "device": str(device), "epochs": epochs, "steps": total_steps,
        "n_pairs": len(chosen), "gap": data.gap, "pairing": spec.pairing,
        "wall_s": round(time.perf_counter() - started, 2), "train_s": round(train_seconds, 2),
        "validation_s": round(validation_seconds, 2),
        "pairs_per_s": round(samples / train_seconds, 1) if samples else 0.0,
        "cancelled": run.cancelled, **metrics,
    }
    real = real_samples_accuracy(student, teacher.head, spec.target)
    if real is not None:
        run.metrics["real_recordings_acc"] = real
    run.embeddings = {"teacher": embeddings["test"].numpy(), "student": student_test.numpy(),
                      "labels": data.test.labels.numpy(), "ids": data.test.ids.numpy()}
    student.cpu().eval()
    return run

