"""Step 2: cross-modality distillation (`cmcd distill`).

The frozen teacher's embeddings of every pair are computed once and cached; the training loop
touches only the student. Target inputs live on the training device for the whole run and are
augmented there in batches. Each method is an objective (a small module returning named loss
terms): the distillation losses of `cmcd.losses`, plus the references `random` (no training),
`target-ssl` (SimCLR on the target alone) and `supervised` (all target labels: the upper bound).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cmcd import augment, cache, pairs, runtime
from cmcd.checkpoints import load_checkpoint, save_checkpoint
from cmcd.encoders import ProjectionHead, build_encoder, encoder_from_config
from cmcd.evaluation import class_prototypes, evaluate, head_predictions
from cmcd.losses import LOSSES, build_loss
from cmcd.pretrain import nt_xent
from cmcd.teacher import Teacher, load_teacher, teacher_stem


@dataclass
class DistillConfig:
    pair: str = "digits-sketch"
    method: str = "cmc"
    teacher: str = "ft"
    epochs: int = 5
    steps: int | None = None  # a fixed number of optimiser steps instead of `epochs` (benchmarks)
    n_pairs: int | None = None  # None: every distillation pair of the pair's split
    batch_size: int = 256
    lr: float = 3e-3
    temperature: float = 0.3  # the student-side tau of cmc, cmc+l2, crd and cmd (its tau_S)
    teacher_temperature: float = 0.1  # cmd's tau_T (sharper than tau_S)
    learn_temperature: bool = False  # cmc, cmc+l2: learn tau (CLIP's logit scale) from its start
    negatives: str = "batch"  # cmc / cmd: in-batch negatives or the whole cached teacher bank
    l2_weight: float = 1.0  # cmc+l2's lambda
    width: int = 16
    gap: float | None = None
    seed: int = 0
    device: str = "auto"
    augment: bool = False  # on validation, 5 epochs: no better for sketch, worse for depth


@dataclass
class Batch:
    target: torch.Tensor  # raw target inputs (on the device)
    teacher: torch.Tensor  # normalised teacher embeddings of the same pairs
    index: torch.Tensor  # positions in the bank
    labels: torch.Tensor | None  # target labels: only the `supervised` reference may read them
    bank: torch.Tensor
    generator: torch.Generator


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


# --- objectives ----------------------------------------------------------------------------------

class LossObjective(nn.Module):
    """A registered distillation loss between the student's and the teacher's embeddings."""

    def __init__(self, loss: nn.Module, modality: str, use_augment: bool):
        super().__init__()
        self.loss, self.modality, self.use_augment = loss, modality, use_augment

    def student_view(self, student: nn.Module, batch: Batch) -> torch.Tensor:
        x = batch.target
        if self.use_augment:
            x = augment.augment_target(self.modality, x, batch.generator)
        return student(x)

    def forward(self, student: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        return self.loss(self.student_view(student, batch).float(), batch.teacher,
                         index=batch.index, bank=batch.bank)


class SupervisedObjective(LossObjective):
    """Upper bound: all target labels, through the teacher's frozen head (so the student lands in
    the teacher's space and is evaluated like every other method)."""

    def __init__(self, head: nn.Linear, modality: str, use_augment: bool):
        super().__init__(nn.Identity(), modality, use_augment)
        self.head = head

    def forward(self, student, batch):
        logits = self.head(F.normalize(self.student_view(student, batch).float(), dim=1))
        return {"ce": F.cross_entropy(logits, batch.labels)}


class TargetSSLObjective(LossObjective):
    """Reference: SimCLR on the target modality alone; the teacher is never consulted."""

    def __init__(self, modality: str, embed_dim: int, temperature: float = 0.2):
        super().__init__(nn.Identity(), modality, use_augment=True)
        self.projector = ProjectionHead(embed_dim)
        self.temperature = temperature

    def forward(self, student, batch):
        views = [self.projector(self.student_view(student, batch).float()) for _ in range(2)]
        return {"simclr": nt_xent(views[0], views[1], self.temperature)}


def _loss_options(name: str, config: DistillConfig) -> dict:
    """The run's settings that this loss's constructor accepts."""
    candidates = {"temperature": config.temperature, "student_temperature": config.temperature,
                  "teacher_temperature": config.teacher_temperature,
                  "learn_temperature": config.learn_temperature,
                  "negatives": config.negatives, "l2_weight": config.l2_weight}
    parameters = inspect.signature(LOSSES[name].__init__).parameters
    return {key: value for key, value in candidates.items() if key in parameters}


REFERENCES: dict[str, Callable] = {
    "random": lambda config, teacher, modality: None,
    "target-ssl": lambda config, teacher, modality: TargetSSLObjective(modality, 128),
    "supervised": lambda config, teacher, modality: SupervisedObjective(
        teacher.head, modality, config.augment),
}
METHODS = (*LOSSES, *REFERENCES)


def build_objective(config: DistillConfig, teacher: Teacher, modality: str) -> nn.Module | None:
    if config.method in REFERENCES:
        return REFERENCES[config.method](config, teacher, modality)
    if config.method not in LOSSES:
        raise ValueError(f"unknown method {config.method!r}; valid: {', '.join(METHODS)}")
    loss = build_loss(config.method, **_loss_options(config.method, config))
    return LossObjective(loss, modality, config.augment)


# --- teacher embeddings, cached -------------------------------------------------------------------

def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def teacher_embeddings(data: pairs.PairData, variant: str, teacher: Teacher,
                       device: torch.device) -> dict[str, torch.Tensor]:
    """Normalised teacher embeddings of the pairs, val and test source photos (CPU tensors),
    computed once per (teacher weights, dataset, render seed) and cached on disk."""
    weights = teacher_stem(data.spec.dataset, variant).with_suffix(".safetensors")
    digest = _file_digest(weights)
    path = cache.cache_dir() / f"teacher-emb-{data.spec.dataset}-{variant}-{digest}-s{data.seed}.safetensors"
    if path.exists():
        return cache.load_tensors(path)[0]
    teacher.to(device)
    embeddings = {split: teacher.embed(data.split(split).source).cpu()
                  for split in ("pairs", "val", "test")}
    teacher.to("cpu")
    cache.save_tensors(path, embeddings, {"teacher": variant, "digest": digest})
    return embeddings


# --- training --------------------------------------------------------------------------------------

@torch.no_grad()
def embed(student: nn.Module, inputs: torch.Tensor, device: torch.device,
          batch_size: int = 1024) -> torch.Tensor:
    student.eval()
    parts = []
    for i in range(0, len(inputs), batch_size):
        with runtime.autocast(device):
            parts.append(student(inputs[i: i + batch_size].to(device)).float().cpu())
    return torch.cat(parts)


def _choose_pairs(total: int, n_pairs: int | None, seed: int) -> torch.Tensor:
    if n_pairs is None or n_pairs >= total:
        return torch.arange(total)
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be at least 1; got {n_pairs}")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:n_pairs].sort().values


def _real_recordings_accuracy(student, teacher, modality: str, device) -> dict | None:
    """Zero-label accuracy on real human recordings of the digits, when they are installed."""
    if modality != "audio":
        return None
    from cmcd.renderers.audio import real_recordings

    recordings = real_recordings()
    if recordings is None:
        return None
    features, labels = recordings
    predictions = head_predictions(embed(student, features, device), teacher.head)
    return {"head": round(float((predictions == labels.numpy()).mean()), 4), "n": len(labels)}


@torch.no_grad()
def _val_accuracy(student, data, teacher, prototypes: torch.Tensor, device) -> dict:
    """Zero-label accuracy on validation items, in torch: numpy's BLAS threads, once woken here,
    keep spinning and slow the next epoch's training on a small CPU."""
    v = F.normalize(embed(student, data.val.target, device), dim=1)
    by_head = (v @ teacher.head.weight.detach().cpu().T + teacher.head.bias.detach().cpu()).argmax(1)
    by_prototype = (v @ prototypes.T).argmax(1)
    labels = data.val.labels
    return {"head": round((by_head == labels).float().mean().item(), 4),
            "prototype": round((by_prototype == labels).float().mean().item(), 4)}


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
            val = {"epoch": epoch + 1,
                   **_val_accuracy(student, data, teacher, val_prototypes, device)}
            validation_seconds += time.perf_counter() - validation_started
            run.val_history.append(val)
            if progress:
                progress({"kind": "epoch", **val})
            if run.cancelled:
                break
    train_seconds = time.perf_counter() - train_started - validation_seconds

    student_test = embed(student, data.test.target, device)
    metrics = evaluate(
        student_test=student_test, teacher_test=embeddings["test"], test_labels=data.test.labels,
        student_val=embed(student, data.val.target, device), teacher_val=embeddings["val"],
        pool_student=embed(student, targets, device), pool_labels=data.pairs.labels[chosen],
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
    real = _real_recordings_accuracy(student, teacher, spec.target, device)
    if real is not None:
        run.metrics["real_recordings_acc"] = real
    run.embeddings = {"teacher": embeddings["test"].numpy(), "student": student_test.numpy(),
                      "labels": data.test.labels.numpy(), "ids": data.test.ids.numpy()}
    student.cpu().eval()
    return run


# --- runs on disk ----------------------------------------------------------------------------------

def save_run(run: DistillRun, out: Path) -> Path:
    """config.json, metrics.json, history.json, student.safetensors (+ .json), embeddings.npz."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache.atomic_write_json(out / "config.json", asdict(run.config))
    cache.atomic_write_json(out / "metrics.json", run.metrics)
    cache.atomic_write_json(out / "history.json", {"steps": run.history, "epochs": run.val_history})
    save_checkpoint(out / "student", {"encoder": run.student}, {"encoder": run.student.config},
                    {"pair": run.config.pair, "method": run.config.method,
                     "teacher": run.config.teacher, "metrics": run.metrics})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **run.embeddings)
    cache.atomic_write_bytes(out / "embeddings.npz", buffer.getvalue())
    return out


def load_student(run_dir: Path) -> tuple[nn.Module, dict]:
    """A saved student and its checkpoint metadata (pair, method, teacher, metrics)."""
    states, metadata = load_checkpoint(Path(run_dir) / "student")
    student = encoder_from_config(metadata["modules"]["encoder"])
    student.load_state_dict(states["encoder"])
    return student.eval(), metadata


def load_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())
