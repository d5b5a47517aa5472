"""Segmentation by dense cross-modality distillation (`cmcd distill --task segmentation`).

Step 1 is the dense teacher (`cmcd.train.dense_teacher`): the frozen photo encoder's hypercolumns
with a dense head trained on source photos' masks. Step 2 trains a dense student on the target
modality so that its feature map at each location lands where the teacher puts the paired photo
at the same location (a dense loss of the registry: dense-cmc, dense-cmd or dense-l2), from
unlabeled pairs only. Step 3, on the test split: zero-label segmentation (the teacher's dense head
on the student's features, upsampled to 32x32) and few-label segmentation (student and head
fine-tuned on k labelled target maps per class), scored by mIoU and pixel accuracy. The teacher's
own scores on the test photos are reported beside them.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cmcd import runtime
from cmcd.data import cache
from cmcd.eval.segmentation import FEW_LABEL_KS, few_label_rows, segmentation_scores
from cmcd.modalities import build_encoder, masks
from cmcd.models.dense import DenseEncoder, DenseHead, predict_masks, save_segmenter, upsample_logits
from cmcd.models.init import initialise
from cmcd.train.config import SegmentConfig, loss_class
from cmcd.train.dense_teacher import DenseTeacher, load_dense_teacher, teacher_dense_embeddings
from cmcd.train.loop import (
    BatchSampler,
    Hooks,
    LoopSettings,
    StepDone,
    distillation_settings,
    train_loop,
    warmup_cosine,
)
from cmcd.train.run_files import check_run_folder

LOG_STEPS = 10  # history entries per run


@dataclass
class SegmentRun:
    config: SegmentConfig
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    student: nn.Module | None = None  # a DenseEncoder, on the CPU, in eval mode
    head: DenseHead | None = None  # the teacher's dense head, which reads the student zero-label
    cancelled: bool = False


@dataclass
class _Setup:
    config: SegmentConfig
    device: torch.device
    seg: masks.SegmentationData
    teacher: DenseTeacher
    student: DenseEncoder
    loss: nn.Module
    chosen: torch.Tensor  # positions of the training pairs
    generator: torch.Generator
    targets: torch.Tensor  # the chosen pairs' target inputs, on the device
    teacher_maps: torch.Tensor  # their teacher dense embeddings (float16), on the device


def build_student(target, width: int, out_dim: int) -> DenseEncoder:
    return DenseEncoder(build_encoder(target, width=width), out_dim)


def _prepare(config: SegmentConfig, progress: Callable[[str], None]) -> _Setup:
    device = runtime.resolve_device(config.device)
    seg = masks.load_segmentation(config.pair, gap=config.gap, progress=progress)
    teacher = load_dense_teacher(seg, config.teacher, config.head_steps, progress)
    chosen = config.chosen_pairs(len(seg.data.pairs))
    subset = None if len(chosen) == len(seg.data.pairs) else chosen
    teacher_maps = teacher_dense_embeddings(seg, teacher, config.registered, device, subset)
    generator = runtime.generator(device, config.seed)
    weights = runtime.generator(torch.device("cpu"), config.seed)
    student = build_student(seg.data.spec.target, config.width, teacher.head.config["channels"])
    student = initialise(student, weights).to(device)
    loss = loss_class(config.method).build(config.loss, generator)
    return _Setup(config, device, seg, teacher, student, loss, chosen, generator,
                  seg.data.pairs.target[chosen].to(device), teacher_maps.to(device))


def _train(setup: _Setup, run: SegmentRun, progress, should_stop) -> float:
    """Train the student; returns the seconds it took."""
    config, started = setup.config, time.perf_counter()
    sampler = BatchSampler(len(setup.chosen), config.batch_size, setup.generator)
    settings = distillation_settings([setup.student], config.lr, config.steps, setup.device)

    def step(index: torch.Tensor) -> dict[str, torch.Tensor]:
        features = setup.student(setup.targets[index]).float()
        return setup.loss(features, setup.teacher_maps[index].float())

    def on_step(done: StepDone) -> None:
        if done.step % max(1, config.steps // LOG_STEPS) and done.step != config.steps:
            return
        entry = {"step": done.step, "total_steps": config.steps, "epoch": done.epoch,
                 "loss": round(done.loss.item(), 5),
                 "elapsed_s": round(time.perf_counter() - started, 2)}
        run.history.append(entry)
        if progress:
            progress({"kind": "step", **entry})

    result = train_loop(step, sampler, math.ceil(config.steps / len(sampler)), settings,
                        Hooks(on_step=on_step, should_stop=should_stop))
    run.cancelled = result.cancelled
    return time.perf_counter() - started


class _KeptNorms(nn.Module):
    """Student and head for fine-tuning on a few maps: every weight trains, but batch norm keeps
    the statistics of distillation (a few maps are too few to estimate them again)."""

    def __init__(self, student: nn.Module, head: DenseHead):
        super().__init__()
        self.student, self.head = student, head

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self


def fine_tune(student: nn.Module, head: DenseHead, inputs: torch.Tensor, label_maps: torch.Tensor,
              steps: int, lr: float, seed: int = 0):
    """Copies of `student` and `head` fine-tuned together on a few labelled maps (full batch)."""
    student = copy.deepcopy(student)
    device = next(student.parameters()).device
    head = copy.deepcopy(head).to(device).requires_grad_(True)
    inputs, targets = inputs.to(device), label_maps.long().to(device)

    def step(index: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = upsample_logits(head(student(inputs[index]))).float()
        return {"ce": F.cross_entropy(logits, targets[index])}

    sampler = BatchSampler(len(inputs), len(inputs), runtime.generator(device, seed))
    settings = LoopSettings([_KeptNorms(student, head)], lr, weight_decay=5e-4, device=device,
                            max_steps=steps, lr_factor=warmup_cosine(steps))
    train_loop(step, sampler, steps, settings)
    return student.eval(), head.eval()


def few_label_scores(setup: _Setup, student: nn.Module, head: DenseHead,
                     split: str = "test") -> dict[str, dict[str, float]]:
    """Mean mIoU, foreground mIoU and pixel accuracy on `split` over `few_label_draws` labelled
    sets of the training pairs' targets, per k."""
    pool, labels = setup.targets.cpu(), setup.seg.data.pairs.labels[setup.chosen]
    pool_masks = setup.seg.split("pairs").target_masks[setup.chosen]
    test, truth = setup.seg.data.split(split).target, setup.seg.split(split).target_masks
    scores = {"miou": {}, "miou_foreground": {}, "pixel_acc": {}}
    for k in FEW_LABEL_KS:
        draws = []
        for draw in range(setup.config.few_label_draws):
            rows = few_label_rows(labels, k, draw, setup.config.seed)
            tuned = fine_tune(student, head, pool[rows], pool_masks[rows], setup.config.fine_tune_steps,
                              setup.config.fine_tune_lr, setup.config.seed)
            draws.append(segmentation_scores(predict_masks(*tuned, test)[0], truth, masks.NUM_CLASSES))
        for name in scores:
            scores[name][str(k)] = round(sum(d[name] for d in draws) / len(draws), 4)
    return scores


def _scores(encoder: nn.Module, head: DenseHead, inputs: torch.Tensor, truth: torch.Tensor) -> dict:
    return segmentation_scores(predict_masks(encoder, head, inputs)[0], truth, masks.NUM_CLASSES)


def validation_scores(setup: _Setup) -> dict[str, float]:
    """Zero-label mIoU, foreground mIoU and pixel accuracy on the validation split (what
    settings are chosen by: `cmcd bench segmentation-tuning` reads foreground mIoU)."""
    seg = setup.seg
    scores = _scores(setup.student, setup.teacher.head, seg.data.val.target, seg.split("val").target_masks)
    return {name: scores[name] for name in ("miou", "miou_foreground", "pixel_acc")}


def validation_miou(setup: _Setup) -> float:
    """Zero-label mIoU on the validation split."""
    return validation_scores(setup)["miou"]


def evaluate_segmentation(setup: _Setup) -> dict:
    """Zero-label (test and val), few-label and the teacher's own scores on the test photos."""
    seg, head, student = setup.seg, setup.teacher.head, setup.student
    zero = _scores(student, head, seg.data.test.target, seg.split("test").target_masks)
    teacher = _scores(setup.teacher.features.to(setup.device), head.to(setup.device),
                      seg.data.test.source, seg.split("test").source_masks)
    few = few_label_scores(setup, student, head)
    return {"miou_zero_label": zero["miou"], "miou_foreground_zero_label": zero["miou_foreground"],
            "pixel_acc": zero["pixel_acc"],
            "iou_zero_label": zero["iou"], "val_miou_zero_label": validation_miou(setup),
            "miou_few_label": few["miou"], "pixel_acc_few_label": few["pixel_acc"],
            "teacher_miou": teacher["miou"], "teacher_pixel_acc": teacher["pixel_acc"]}


def _run_facts(setup: _Setup, train_s: float, wall_s: float) -> dict:
    config, data = setup.config, setup.seg.data
    samples = config.steps * min(config.batch_size, len(setup.chosen))
    return {"task": "segmentation", "pair": config.pair, "method": config.method,
            "loss": config.loss_name, "teacher": config.teacher, "seed": config.seed,
            "device": str(setup.device), "steps": config.steps, "n_pairs": len(setup.chosen),
            "gap": data.gap, "registered": config.registered, "wall_s": round(wall_s, 2),
            "train_s": round(train_s, 2), "pairs_per_s": round(samples / max(train_s, 1e-9), 1)}


def train_segmenter(config: SegmentConfig, progress: Callable[[dict], None] | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    log: Callable[[str], None] = lambda message: None) -> tuple[_Setup, SegmentRun, float]:
    """Prepare and train, without evaluating: (setup, run so far, training seconds)."""
    setup = _prepare(config, log)
    run = SegmentRun(config)
    train_s = _train(setup, run, progress, should_stop)
    setup.student.eval()
    return setup, run, train_s


def segment_distill(config: SegmentConfig, progress: Callable[[dict], None] | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    log: Callable[[str], None] = lambda message: None) -> SegmentRun:
    """Distil a dense student for `config.pair` and evaluate it on the test split."""
    started = time.perf_counter()
    setup, run, train_s = train_segmenter(config, progress, should_stop, log)
    evaluated = time.perf_counter()
    metrics = evaluate_segmentation(setup)
    done = time.perf_counter()
    run.metrics = {**_run_facts(setup, train_s, done - started), **metrics,
                   "eval_s": round(done - evaluated, 2), "cancelled": run.cancelled}
    run.student, run.head = setup.student.cpu(), setup.teacher.head.cpu()
    return run


SEGMENT_RUN_FILES = ("config.json", "metrics.json", "history.json", "student.safetensors",
                     "student.json")


def save_segment_run(run: SegmentRun, out: Path) -> Path:
    """config.json, metrics.json, history.json and student.safetensors (+ .json: the dense student
    with the teacher's dense head, see `cmcd.models.dense.load_segmenter`) in `out`."""
    out = Path(out)
    check_run_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    cache.atomic_write_json(out / "config.json", run.config.to_dict())
    cache.atomic_write_json(out / "metrics.json", run.metrics)
    cache.atomic_write_json(out / "history.json", {"steps": run.history})
    save_segmenter(out / "student", run.student, run.head, {
        "pair": run.config.pair, "method": run.config.method, "loss": run.config.loss_name,
        "teacher": run.config.teacher, "task": "segmentation", "metrics": run.metrics})
    return out
