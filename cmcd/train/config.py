"""The settings of one distillation run."""

from __future__ import annotations

from dataclasses import dataclass


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

