"""Step 2: cross-modality distillation (`cmcd distill`).

The frozen teacher's embeddings of every pair are computed once and cached; the training loop
touches only the student. Target inputs live on the training device for the whole run and are
augmented there in batches. Each method is an objective (a small module returning named loss
terms): the distillation losses of `cmcd.train.losses`, plus the references `random` (no training),
`target-ssl` (SimCLR on the target alone) and `supervised` (all target labels: the upper bound).

Launched by torchrun, every rank trains its share of each batch (`cmcd.train.parallel`); rank 0
alone validates and evaluates, the other ranks return a run without metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from cmcd import runtime
from cmcd.eval.classify import real_samples_accuracy
from cmcd.eval.metrics import class_prototypes, evaluate, zero_label_accuracy
from cmcd.modalities import build_encoder, pairs
from cmcd.models.embed import embed
from cmcd.models.init import initialise
from cmcd.models.teacher import Teacher, load_teacher
from cmcd.train import parallel
from cmcd.train.config import DistillConfig
from cmcd.train.finetune import NormalizedHead, Schedule, classifier_accuracy, few_label_finetune_accuracy
from cmcd.train.loop import (
    BatchSampler,
    Hooks,
    SingleProcess,
    Step,
    StepDone,
    distillation_settings,
    train_loop,
)
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


# --- preparing -------------------------------------------------------------------------------------

MAX_VALIDATIONS = 10  # per run: many tiny epochs (a small pair budget) are validated now and then


@dataclass
class _Selection:
    """For an objective that selects its weights on validation (the supervised reference): the
    weights of the best validation accuracy so far, and how many validations ago that was."""

    modules: list[nn.Module]
    patience: int
    best: float = -1.0
    best_epoch: int = 0
    since_best: int = 0
    states: list[dict] = field(default_factory=list)

    def offer(self, accuracy: float, epoch: int) -> None:
        if accuracy > self.best:
            self.best, self.best_epoch, self.since_best = accuracy, epoch, 0
            self.states = [{key: value.detach().clone() for key, value in module.state_dict().items()}
                           for module in self.modules]
        else:
            self.since_best += 1

    @property
    def exhausted(self) -> bool:
        return self.since_best >= self.patience

    def restore(self) -> None:
        for module, state in zip(self.modules, self.states, strict=True):
            module.load_state_dict(state)


@dataclass
class _Setup:
    """Everything a run holds before training starts."""

    config: DistillConfig
    device: torch.device
    data: pairs.PairData
    teacher: Teacher
    embeddings: dict[str, torch.Tensor]  # the teacher's, on the CPU: pairs, val, test
    objective: nn.Module | None  # None: the untrained reference
    student: nn.Module
    chosen: torch.Tensor  # positions of the training pairs
    prototypes: np.ndarray  # class means of the teacher's pair embeddings
    generator: torch.Generator  # on the device: batch order, augmentations, sampled negatives
    strategy: SingleProcess | parallel.DataParallel
    # The chosen pairs' target inputs, teacher embeddings (the bank) and labels, on the device
    # for the whole run:
    targets: torch.Tensor = field(init=False)
    bank: torch.Tensor = field(init=False)
    labels: torch.Tensor = field(init=False)

    def __post_init__(self):
        self.targets = self.data.pairs.target[self.chosen].to(self.device)
        self.bank = self.embeddings["pairs"][self.chosen].to(self.device)
        self.labels = self.data.pairs.labels[self.chosen].to(self.device)


def _placement(config: DistillConfig) -> tuple[torch.device, SingleProcess | parallel.DataParallel]:
    """The training device and how training spreads: over torchrun's processes when launched by
    it (each rank on its own GPU), else in this process alone."""
    device = runtime.resolve_device(config.device)
    if not parallel.launched_by_torchrun():
        return device, SingleProcess()
    device = parallel.rank_device(device)
    return device, parallel.DataParallel.from_environment(device)


def _prepare(config: DistillConfig) -> _Setup:
    """Device, data, teacher embeddings, the chosen pairs, and a student and objective whose
    initial weights come from the run's seed alone."""
    device, strategy = _placement(config)
    data = pairs.load_pair(config.pair, gap=config.gap)
    teacher = load_teacher(data.spec.dataset, config.teacher)
    embeddings = teacher_embeddings(data, config.teacher, teacher, device)
    generator = runtime.generator(device, config.seed)
    weights = runtime.generator(torch.device("cpu"), config.seed)
    student = initialise(build_encoder(data.spec.target, width=config.width), weights).to(device)
    objective = build_objective(config, teacher, data.spec.target, generator)
    if objective is not None:
        objective = initialise(objective, weights).to(device)
    chosen = config.chosen_pairs(len(data.pairs))
    prototypes = class_prototypes(embeddings["pairs"], data.pairs.labels, len(data.class_names))
    return _Setup(config, device, data, teacher, embeddings, objective, student, chosen, prototypes,
                  generator, strategy)


# --- training --------------------------------------------------------------------------------------

def _schedule(config: DistillConfig, steps_per_epoch: int, trains: bool) -> tuple[int, int]:
    """(epochs, total optimiser steps): `steps` when given, else whole epochs."""
    if not trains:
        return 0, 0
    if config.steps is None:
        return config.epochs, config.epochs * steps_per_epoch
    if config.steps < 1:
        raise ValueError(f"steps must be at least 1; got {config.steps}")
    return math.ceil(config.steps / steps_per_epoch), config.steps


@dataclass
class _Training:
    """What training did and how long it took; fills the run's history and validation history
    and forwards both to `progress` as step and epoch events."""

    setup: _Setup
    run: DistillRun
    progress: Callable[[dict], None] | None
    epochs: int
    total_steps: int
    log_every: int
    samples: int = 0
    validation_s: float = 0.0
    train_s: float = 0.0  # validation excluded
    started: float = field(default_factory=time.perf_counter)
    selection: _Selection | None = None  # when the objective selects its weights on validation

    def on_step(self, done: StepDone) -> None:
        if done.step % self.log_every and done.step != self.total_steps:
            return
        entry = {"step": done.step, "total_steps": self.total_steps, "epoch": done.epoch,
                 "loss": round(done.loss.item(), 5),
                 **{name: round(term.item(), 5) for name, term in done.terms.items()},
                 "elapsed_s": round(time.perf_counter() - self.started, 2)}
        self.run.history.append(entry)
        if self.progress:
            self.progress({"kind": "step", **entry})

    def validate(self, epoch: int) -> None:
        started = time.perf_counter()
        setup, labels = self.setup, self.setup.data.val.labels
        prototypes = torch.from_numpy(setup.prototypes).float()
        embeddings = embed(setup.student, setup.data.val.target)
        val = {"epoch": epoch, **zero_label_accuracy(embeddings, labels, setup.teacher.head, prototypes),
               "accuracy": classifier_accuracy(run_classifier(setup), embeddings, labels)}
        if self.selection is not None:
            self.selection.offer(val["accuracy"], epoch)
        self.validation_s += time.perf_counter() - started
        self.run.val_history.append(val)
        if self.progress:
            self.progress({"kind": "epoch", **val})

    def finish(self, samples: int) -> _Training:
        self.samples = samples
        self.train_s = time.perf_counter() - self.started - self.validation_s
        return self


def _distillation_step(setup: _Setup, student: nn.Module) -> Step:
    def step(index: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = Batch(setup.targets[index], setup.bank[index], index, setup.labels[index],
                      setup.bank, setup.generator)
        return setup.objective(student, batch)

    return step


def _selection(setup: _Setup) -> _Selection | None:
    """Selection on validation, for an objective that asks for it; in one process only (under
    torchrun the ranks would have to agree on when to stop)."""
    objective = setup.objective
    if not getattr(objective, "selects_on_validation", False) or setup.strategy.world_size > 1:
        return None
    return _Selection([setup.student, objective], objective.patience)


def _stop_rule(training: _Training, should_stop) -> Callable[[], bool]:
    def stop() -> bool:
        exhausted = training.selection is not None and training.selection.exhausted
        return exhausted or bool(should_stop and should_stop())

    return stop


def _train(setup: _Setup, run: DistillRun, progress, should_stop) -> _Training:
    config = setup.config
    sampler = BatchSampler(len(setup.chosen), config.batch_size, setup.generator)
    epochs, total_steps = _schedule(config, len(sampler), setup.objective is not None)
    training = _Training(setup, run, progress, epochs, total_steps, log_every=max(1, len(sampler) // 8),
                         selection=_selection(setup))
    if setup.objective is None:
        return training.finish(samples=0)
    settings = distillation_settings([setup.student, setup.objective], config.lr, total_steps,
                                     setup.device, strategy=setup.strategy)
    step = _distillation_step(setup, settings.strategy.wrap_model(setup.student))
    validate = training.validate if parallel.is_main_process() else None
    every = 1 if training.selection else max(1, epochs // MAX_VALIDATIONS)
    hooks = Hooks(on_step=training.on_step, validate=validate,
                  should_stop=_stop_rule(training, should_stop), validate_every=every)
    result = train_loop(step, sampler, epochs, settings, hooks)
    selection = training.selection
    run.cancelled = result.cancelled and not (selection and selection.exhausted)
    if selection and selection.states:
        selection.restore()
    return training.finish(samples=result.steps * sampler.batch_size)


# --- evaluation ------------------------------------------------------------------------------------

def _evaluate(setup: _Setup, student_test: torch.Tensor) -> dict:
    student, data = setup.student, setup.data
    return evaluate(
        student_test=student_test, teacher_test=setup.embeddings["test"], test_labels=data.test.labels,
        student_val=embed(student, data.val.target), teacher_val=setup.embeddings["val"],
        pool_student=embed(student, setup.targets), pool_labels=data.pairs.labels[setup.chosen],
        head=setup.teacher.head, prototypes=setup.prototypes, pairing=data.spec.pairing,
        seed=setup.config.seed)


@dataclass
class TrainedStudent:
    """What training leaves for evaluation, with no tie to the device it ran on: the student's
    weights as CPU tensors, the histories and timings. Picklable, so it can come back from
    another process (a Spaces ZeroGPU worker)."""

    config: DistillConfig
    device: str  # where it trained
    student_state: dict[str, torch.Tensor]
    history: list[dict]
    val_history: list[dict]
    cancelled: bool
    epochs: int
    total_steps: int
    samples: int
    train_s: float  # validation excluded
    validation_s: float
    wall_s: float  # preparing and training
    world_size: int = 1  # processes that trained it together
    objective_state: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. a head of its own
    selected_epoch: int | None = None  # the epoch whose weights were kept (selection on validation)


def _cpu_state(module: nn.Module | None) -> dict[str, torch.Tensor]:
    if module is None:
        return {}
    return {key: value.detach().cpu().clone() for key, value in module.state_dict().items()}


def _train_prepared(setup: _Setup, started: float, progress, should_stop) -> TrainedStudent:
    run = DistillRun(setup.config, str(setup.device))
    training = _train(setup, run, progress, should_stop)
    selected = training.selection.best_epoch if training.selection else None
    return TrainedStudent(setup.config, str(setup.device), _cpu_state(setup.student), run.history,
                          run.val_history, run.cancelled, training.epochs, training.total_steps,
                          training.samples, training.train_s, training.validation_s,
                          time.perf_counter() - started, setup.strategy.world_size,
                          _cpu_state(setup.objective), selected)


def train_student(config: DistillConfig,
                  progress: Callable[[dict], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> TrainedStudent:
    """Train a student for `config.pair`, nothing more (the part that wants a GPU); `progress`
    gets a dict per logged step and per epoch, `should_stop` is polled every step."""
    started = time.perf_counter()
    return _train_prepared(_prepare(config), started, progress, should_stop)


def _run_metrics(setup: _Setup, trained: TrainedStudent, wall_s: float) -> dict:
    config, data, samples = setup.config, setup.data, trained.samples
    kept = kept_validation(trained)
    return {
        "pair": data.spec.name, "method": config.method, "teacher": config.teacher,
        "seed": config.seed, "device": trained.device, "epochs": trained.epochs,
        "steps": trained.total_steps, "n_pairs": len(setup.chosen), "gap": data.gap,
        "pairing": data.spec.pairing, "wall_s": round(wall_s, 2),
        "train_s": round(trained.train_s, 2), "validation_s": round(trained.validation_s, 2),
        "pairs_per_s": round(samples / trained.train_s, 1) if samples else 0.0,
        "cancelled": trained.cancelled, "world_size": trained.world_size,
        **({} if trained.selected_epoch is None else {"selected_epoch": trained.selected_epoch}),
        **({} if kept is None else {"validation_accuracy": kept["accuracy"]}),
    }


def kept_validation(trained: TrainedStudent) -> dict | None:
    """The validation of the weights the run kept: its selected epoch's, else its last."""
    chosen = [v for v in trained.val_history if v.get("epoch") == trained.selected_epoch]
    return (chosen or trained.val_history or [None])[-1]


def run_classifier(setup: _Setup) -> nn.Module:
    """What reads the run's student embeddings as classes: the objective's own head (the
    supervised reference), else the teacher's head over normalised embeddings."""
    own = getattr(setup.objective, "head", None)
    return own if own is not None else NormalizedHead(setup.teacher.head)


def finetune_accuracy(setup: _Setup, schedule: Schedule, split: pairs.Split) -> dict[str, float]:
    """Step 3 by fine-tuning: the whole student and its classifier on k labelled distillation
    pairs per class (k = 1, 5, 10; five draws), scored on `split`."""
    return few_label_finetune_accuracy(
        setup.student, run_classifier(setup), setup.targets, setup.labels, split.target, split.labels,
        schedule, setup.device, seed=setup.config.seed)


def _test_metrics(setup: _Setup, student_test: torch.Tensor) -> dict:
    """Every test metric: the evaluation bundle, the run's own classifier's accuracy and, when
    the config asks for it, few-label fine-tuning (with its cost in seconds)."""
    config, test = setup.config, setup.data.test
    metrics = {**_evaluate(setup, student_test),
               "accuracy": classifier_accuracy(run_classifier(setup), student_test, test.labels)}
    if config.finetune_steps:
        started = time.perf_counter()
        schedule = Schedule(config.finetune_steps, config.finetune_lr)
        metrics["few_label_ft_acc"] = finetune_accuracy(setup, schedule, test)
        metrics["finetune_s"] = round(time.perf_counter() - started, 2)
    return metrics


def _evaluate_prepared(setup: _Setup, trained: TrainedStudent, started: float) -> DistillRun:
    """The finished run: test metrics of `setup.student`, which holds the trained weights."""
    run = DistillRun(trained.config, trained.device, history=trained.history,
                     val_history=trained.val_history, student=setup.student,
                     cancelled=trained.cancelled)
    student_test = embed(setup.student, setup.data.test.target)
    metrics = _test_metrics(setup, student_test)
    wall_s = trained.wall_s + time.perf_counter() - started
    run.metrics = {**_run_metrics(setup, trained, wall_s), **metrics}
    real = real_samples_accuracy(setup.student, setup.teacher.head, setup.data.spec.target)
    if real is not None:
        run.metrics["real_recordings_acc"] = real
    run.embeddings = {"teacher": setup.embeddings["test"].numpy(), "student": student_test.numpy(),
                      "labels": setup.data.test.labels.numpy(), "ids": setup.data.test.ids.numpy()}
    setup.student.cpu().eval()
    return run


def evaluate_student(trained: TrainedStudent) -> DistillRun:
    """Test metrics, embeddings and the student module of a trained student, on the CPU (the
    metrics' classifiers run there anyway)."""
    started = time.perf_counter()
    setup = _prepare(replace(trained.config, device="cpu"))
    setup.student.load_state_dict(trained.student_state)
    if setup.objective is not None and trained.objective_state:
        setup.objective.load_state_dict(trained.objective_state)
    return _evaluate_prepared(setup, trained, started)


def distill(config: DistillConfig,
            progress: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None,
            start_from: dict[str, torch.Tensor] | None = None) -> DistillRun:
    """Distil a student for `config.pair` and evaluate it: `train_student` then
    `evaluate_student`, on one prepared setup. `progress` gets a dict per logged step and per
    epoch, `should_stop` is polled every step (cancelling still evaluates what was trained);
    `start_from`: the student's initial weights (a state dict) instead of a fresh initialisation."""
    started, cpu_started = time.perf_counter(), time.process_time()
    setup = _prepare(config)
    if start_from is not None:
        setup.student.load_state_dict(start_from)
    trained = _train_prepared(setup, started, progress, should_stop)
    setup.strategy.close()
    if not parallel.is_main_process():
        return DistillRun(config, trained.device, trained.history, student=setup.student,
                          cancelled=trained.cancelled)
    run = _evaluate_prepared(setup, trained, time.perf_counter())
    run.metrics["cpu_s"] = round(time.process_time() - cpu_started, 1)  # this process, all threads
    return run


def validation_run(config: DistillConfig, schedules: tuple[Schedule, ...] = (),
                   checks: Callable[[nn.Module, nn.Linear, pairs.PairSpec], dict] | None = None) -> dict:
    """Train a student and score it on the validation split only (for choosing settings; the test
    split is never read): the last validation, few-label fine-tuning under each schedule, and
    `checks(student, teacher head, pair spec)` when given (under "checks")."""
    started, cpu_started = time.perf_counter(), time.process_time()
    setup = _prepare(config)
    trained = _train_prepared(setup, started, None, None)
    metrics = {"pair": config.pair, "method": config.method, "seed": config.seed,
               "steps": trained.total_steps,
               "validation": trained.val_history[-1] if trained.val_history else {},
               "train_s": round(trained.train_s, 2)}
    if schedules:
        metrics["few_label_ft_val"] = {f"{s.steps}@{s.lr:g}": finetune_accuracy(setup, s, setup.data.val)
                                       for s in schedules}
    if checks is not None:
        setup.student.eval()
        metrics["checks"] = checks(setup.student, setup.teacher.head, setup.data.spec)
    metrics["wall_s"] = round(time.perf_counter() - started, 2)
    metrics["cpu_s"] = round(time.process_time() - cpu_started, 1)
    return metrics


def accuracy_run(config: DistillConfig) -> dict:
    """Train a student and measure only what a learning curve needs: the validation accuracy of
    the weights it kept and the test accuracy of its classifier (`cmcd bench budget`; the full
    evaluation of `distill`, its probes and TV estimates, costs more than a short run)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    setup = _prepare(config)
    trained = _train_prepared(setup, started, None, None)
    test = setup.data.test
    kept = kept_validation(trained)
    return {"pair": config.pair, "method": config.method, "seed": config.seed, "steps": trained.total_steps,
            "validation_accuracy": None if kept is None else kept["accuracy"],
            "accuracy": classifier_accuracy(run_classifier(setup), embed(setup.student, test.target),
                                            test.labels),
            "train_s": round(trained.train_s, 2), "wall_s": round(time.perf_counter() - started, 2),
            "cpu_s": round(time.process_time() - cpu_started, 1)}
