"""The settings of one distillation run: the run's own settings plus `loss`, the chosen method's
options. Everything is checked on construction, before any data loads."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from cmcd.modalities import pairs
from cmcd.train.objectives import METHODS, OBJECTIVES, method_options
from cmcd.train.options import MethodOptions, check_fields, setting

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class DistillConfig:
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

    def __post_init__(self):
        check_fields(self)
        pairs.get_spec(self.pair)
        options = method_options(self.method)
        if self.loss is None:
            self.loss = options()
        if type(self.loss) is not options:
            raise ValueError(f"the options of {self.method} are {options.__name__}, "
                             f"not {type(self.loss).__name__}")

    def to_dict(self) -> dict:
        """JSON-ready; the loss options nested under "loss"."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, settings: dict) -> DistillConfig:
        settings = dict(settings)
        loss = settings.pop("loss", None)
        method = settings.get("method", cls.method)
        options = None if loss is None else method_options(method)(**loss)
        return cls(**settings, loss=options)

    @classmethod
    def from_flat(cls, spell: Callable[[str], str] = str, **settings) -> DistillConfig:
        """A config from flat settings: run settings and the method's option names (or their
        aliases) side by side. `spell` writes a setting's name in messages (as a CLI flag, say)."""
        run_names = {f.name for f in dataclasses.fields(cls)} - {"loss"}
        method = settings.get("method", cls.method)
        options = method_options(method)
        loss_settings = {}
        for name, value in settings.items():
            if name in run_names:
                continue
            field_name = options.aliases.get(name, name)
            if field_name not in options.names():
                raise ValueError(_not_an_option(spell(name), name, method))
            loss_settings[field_name] = value
        return cls(**{k: v for k, v in settings.items() if k in run_names},
                   loss=options(**loss_settings))


def methods_with_option(name: str) -> list[str]:
    """The methods that take an option of this name (directly or by an alias)."""
    return [method for method, entry in OBJECTIVES.items()
            if name in entry.options.names() or name in entry.options.aliases]


def _not_an_option(spelled: str, name: str, method: str) -> str:
    owners = methods_with_option(name)
    if not owners:
        return f"unknown setting {spelled}"
    return f"{spelled} is an option of {', '.join(owners)}, not of {method}"
