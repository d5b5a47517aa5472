"""The settings of one run, checked on construction before any data loads: a recognition
distillation (`DistillConfig`) or a segmentation distillation (`SegmentConfig`, `cmcd distill --task
segmentation`). Both are a `RunConfig`: the run's own settings plus `loss`, the chosen method's
options; they differ only in their settings and in `options_for`, which resolves a method to its
options class.

Segmentation methods are named as for recognition, `cmc`, `cmd` and `l2`, and mean the dense
losses `dense-cmc`, `dense-cmd` and `dense-l2` of the loss registry (either spelling is accepted)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from cmcd.modalities import masks, pairs
from cmcd.runtime import DEVICES
from cmcd.train import dense_losses  # noqa: F401 - registers the dense losses
from cmcd.train.losses import LOSSES
from cmcd.train.objectives import METHODS, OBJECTIVES, method_options
from cmcd.train.options import MethodOptions, check_fields, setting

DENSE_PREFIX = "dense-"
# The segmentation methods, read from the loss registry: `cmc` for the dense loss `dense-cmc`, ...
SEGMENTATION_METHODS = {name.removeprefix(DENSE_PREFIX): name for name, loss in LOSSES.items()
                        if loss.task == "segmentation"}


class RunConfig:
    """What a recognition and a segmentation config share; a subclass is a dataclass with the
    fields `pair`, `method`, `n_pairs`, `seed` and `loss`, and resolves a method to its options."""

    @classmethod
    def options_for(cls, method: str) -> type[MethodOptions]:
        raise NotImplementedError

    @classmethod
    def not_an_option(cls, spelled: str, name: str, method: str) -> str:
        """The message for a setting that is neither a run setting nor an option of `method`."""
        return f"{spelled} is not an option of {method}"

    @property
    def loss_name(self) -> str:
        """The name of the run's loss in the loss registry."""
        return self.method

    def check_pair(self) -> None:
        pairs.get_spec(self.pair)

    def __post_init__(self):
        check_fields(self)
        self.check_pair()
        options = self.options_for(self.method)
        if self.loss is None:
            self.loss = options()
        if type(self.loss) is not options:
            raise ValueError(f"the options of {self.loss_name} are {options.__name__}, "
                             f"not {type(self.loss).__name__}")

    def to_dict(self) -> dict:
        """JSON-ready; the loss options nested under "loss"."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, settings: dict):
        settings = dict(settings)
        loss = settings.pop("loss", None)
        method = settings.get("method", cls.method)
        options = None if loss is None else cls.options_for(method)(**loss)
        return cls(**settings, loss=options)

    @classmethod
    def from_flat(cls, spell: Callable[[str], str] = str, **settings):
        """A config from flat settings: run settings and the method's option names (or their
        aliases) side by side. `spell` writes a setting's name in messages (as a CLI flag, say)."""
        run_names = {f.name for f in dataclasses.fields(cls)} - {"loss"}
        method = settings.get("method", cls.method)
        options = cls.options_for(method)
        loss_settings = {}
        for name, value in settings.items():
            if name in run_names:
                continue
            field_name = options.aliases.get(name, name)
            if field_name not in options.names():
                raise ValueError(cls.not_an_option(spell(name), name, method))
            loss_settings[field_name] = value
        return cls(**{k: v for k, v in settings.items() if k in run_names},
                   loss=options(**loss_settings))

    def chosen_pairs(self, total: int) -> torch.Tensor:
        """Which of `total` distillation pairs the run trains on: all, or `n_pairs` drawn by seed."""
        return choose_pairs(total, self.n_pairs, self.seed)


def choose_pairs(total: int, n_pairs: int | None, seed: int) -> torch.Tensor:
    if n_pairs is None or n_pairs >= total:
        return torch.arange(total)
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be at least 1; got {n_pairs}")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:n_pairs].sort().values


# --- recognition -----------------------------------------------------------------------------------

@dataclass
class DistillConfig(RunConfig):
    pair: str = setting("digits-sketch", "modality pair (see `cmcd pairs`)")
    method: str = setting("cmc", "distillation loss or reference", choices=METHODS)
    teacher: str = setting("ft", "teacher: SimCLR with a linear head (ssl) or fine-tuned (ft)",
                           choices=("ssl", "ft"))
    epochs: int = setting(5, "passes over the chosen pairs", minimum=1)
    steps: int | None = setting(None, "a fixed number of optimiser steps instead of epochs",
                                minimum=1)
    n_pairs: int | None = setting(None, "unlabeled pairs to train on (default: all)", minimum=1)
    batch_size: int = setting(256, "pairs per optimiser step", minimum=1)
    lr: float = setting(3e-3, "peak learning rate (AdamW, cosine schedule)", above=0)
    width: int = setting(16, "channel width of the student encoder", minimum=1)
    gap: float | None = setting(None, "modality gap 0..1 (default: the pair's)", minimum=0,
                                maximum=1)
    seed: int = setting(0, "random seed", minimum=0, maximum=2 ** 32 - 1)
    device: str = setting("auto", "training device", choices=DEVICES)
    # On validation, 5 epochs: no better for sketch, worse for depth.
    augment: bool = setting(False, "augment the target inputs in each batch")
    # Step 3 by fine-tuning (few_label_ft_acc); the schedule is chosen by `cmcd bench tuning`.
    finetune_steps: int = setting(0, "after distilling, fine-tune the whole student on 1/5/10 labels "
                                     "per class for this many steps, five draws each (0: off)", minimum=0)
    finetune_lr: float = setting(1e-4, "peak learning rate of that fine-tuning", above=0)
    loss: MethodOptions | None = None  # the method's options; None: its defaults

    @classmethod
    def options_for(cls, method: str) -> type[MethodOptions]:
        return method_options(method)

    @classmethod
    def not_an_option(cls, spelled: str, name: str, method: str) -> str:
        owners = methods_with_option(name)
        if not owners:
            return f"unknown setting {spelled}"
        return f"{spelled} is an option of {', '.join(owners)}, not of {method}"


def methods_with_option(name: str) -> list[str]:
    """The methods that take an option of this name (directly or by an alias)."""
    return [method for method, entry in OBJECTIVES.items()
            if name in entry.options.names() or name in entry.options.aliases]


# --- segmentation ----------------------------------------------------------------------------------

def method_name(method: str) -> str:
    """`cmc` for `cmc` or `dense-cmc`; ValueError for a method with no dense loss."""
    short = method.removeprefix(DENSE_PREFIX)
    if short not in SEGMENTATION_METHODS:
        raise ValueError(f"segmentation methods: {', '.join(SEGMENTATION_METHODS)} "
                         f"(the dense losses {', '.join(SEGMENTATION_METHODS.values())}); got {method!r}")
    return short


def loss_class(method: str):
    return LOSSES[SEGMENTATION_METHODS[method_name(method)]]


@dataclass
class SegmentConfig(RunConfig):
    pair: str = setting("digits-depth", f"modality pair with masks: {', '.join(masks.SEGMENTATION_PAIRS)}")
    method: str = setting("cmc", f"dense loss: {', '.join(SEGMENTATION_METHODS)} "
                                  f"({', '.join(SEGMENTATION_METHODS.values())})")
    teacher: str = setting("ft", "teacher: SimCLR with a linear head (ssl) or fine-tuned (ft)",
                           choices=("ssl", "ft"))
    # steps, lr, locations and the fine-tuning schedule: chosen on validation for dense CMC by an
    # earlier sweep; `cmcd bench segmentation` runs each loss with the settings `cmcd bench
    # segmentation-tuning` chose for it (results/segmentation-tuning.json), these without that file
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

    @classmethod
    def options_for(cls, method: str) -> type[MethodOptions]:
        return loss_class(method).Options

    @property
    def loss_name(self) -> str:
        return SEGMENTATION_METHODS[self.method]

    def check_pair(self) -> None:
        masks.check_pair(self.pair)
        self.method = method_name(self.method)

    @classmethod
    def not_an_option(cls, spelled: str, name: str, method: str) -> str:
        return f"{spelled} is not an option of {SEGMENTATION_METHODS[method_name(method)]}"
