"""The settings of one segmentation distillation run (`cmcd distill --task segmentation`): the
run's own settings plus `loss`, the options of the chosen dense loss. The methods are named as for
recognition, `cmc`, `cmd` and `l2`, and mean the dense losses `dense-cmc`, `dense-cmd` and `dense-l2`
of the loss registry (either spelling is accepted). Checked on construction, before data loads."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from cmcd.modalities import masks
from cmcd.train import dense_losses  # noqa: F401 - registers the dense losses
from cmcd.train.losses import LOSSES
from cmcd.train.options import MethodOptions, check_fields, setting

SEGMENTATION_METHODS = {"cmc": "dense-cmc", "cmd": "dense-cmd", "l2": "dense-l2"}
DEVICES = ("auto", "cpu", "cuda", "mps")


def method_name(method: str) -> str:
    """`cmc` for `cmc` or `dense-cmc`; ValueError for a method with no dense loss."""
    short = method.removeprefix("dense-")
    if short not in SEGMENTATION_METHODS:
        raise ValueError(f"segmentation methods: {', '.join(SEGMENTATION_METHODS)} "
                         f"(the dense losses {', '.join(SEGMENTATION_METHODS.values())}); got {method!r}")
    return short


def loss_class(method: str):
    return LOSSES[SEGMENTATION_METHODS[method_name(method)]]


@dataclass
class SegmentConfig:
    pair: str = setting("digits-depth", f"modality pair with masks: {', '.join(masks.SEGMENTATION_PAIRS)}")
    method: str = setting("cmc", "dense loss: cmc, cmd or l2 (dense-cmc, dense-cmd, dense-l2)")
    teacher: str = setting("ft", "teacher: SimCLR with a linear head (ssl) or fine-tuned (ft)",
                           choices=("ssl", "ft"))
    # steps, lr, locations and the fine-tuning schedule: chosen on validation
    # (scripts/tune_segmentation.py, results/segmentation-tuning.json)
    steps: int = setting(300, "optimiser steps", minimum=1)
    n_pairs: int | None = setting(None, "unlabeled pairs to train on (default: all)", minimum=1)
    batch_size: int = setting(64, "pairs per optimiser step", minimum=1)
    lr: float = setting(0.02, "peak learning rate (AdamW, cosine schedule)", above=0)
    width: int = setting(16, "channel width of the student encoder", minimum=1)
    gap: float | None = setting(None, "modality gap 0..1 (default: the pair's)", minimum=0, maximum=1)
    seed: int = setting(0, "random seed", minimum=0, maximum=2 ** 32 - 1)
    device: str = setting("auto", "training device", choices=DEVICES)
    head_steps: int = setting(600, "steps that train the teacher's dense head (once, then cached)",
                              minimum=1)
    fine_tune_steps: int = setting(20, "few-label fine-tuning steps on the k labelled maps",
                                   minimum=1)
    fine_tune_lr: float = setting(1e-3, "few-label fine-tuning learning rate", above=0)
    few_label_draws: int = setting(2, "labelled sets drawn per k for few-label scores (their mean)",
                                   minimum=1)
    registered: bool = setting(False, "pair each target location with the same point of the item "
                               "(photos drawn in the target's geometry), not the same pixel")
    loss: MethodOptions | None = None  # the dense loss's options; None: its defaults

    def __post_init__(self):
        check_fields(self)
        masks.check_pair(self.pair)
        self.method = method_name(self.method)
        options = loss_class(self.method).Options
        if self.loss is None:
            self.loss = options()
        if type(self.loss) is not options:
            raise ValueError(f"the options of {self.loss_name} are {options.__name__}, "
                             f"not {type(self.loss).__name__}")

    @property
    def loss_name(self) -> str:
        return SEGMENTATION_METHODS[self.method]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, settings: dict) -> SegmentConfig:
        settings = dict(settings)
        loss = settings.pop("loss", None)
        options = None if loss is None else loss_class(settings.get("method", cls.method)).Options(**loss)
        return cls(**settings, loss=options)

    @classmethod
    def from_flat(cls, spell: Callable[[str], str] = str, **settings) -> SegmentConfig:
        """A config from run settings and the dense loss's option names side by side."""
        run_names = {f.name for f in dataclasses.fields(cls)} - {"loss"}
        options = loss_class(settings.get("method", cls.method)).Options
        loss_settings = {}
        for name, value in settings.items():
            if name in run_names:
                continue
            field_name = options.aliases.get(name, name)
            if field_name not in options.names():
                raise ValueError(f"{spell(name)} is not an option of "
                                 f"{SEGMENTATION_METHODS[method_name(settings.get('method', cls.method))]}")
            loss_settings[field_name] = value
        return cls(**{k: v for k, v in settings.items() if k in run_names},
                   loss=options(**loss_settings))
