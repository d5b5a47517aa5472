"""Typed settings: dataclass fields that carry a one-line help text and their valid range, checked
on construction, so a bad value is one sentence before any data loads.

    temperature: float = setting(0.3, "softmax temperature", above=0)

The command line and the app generate their flags and controls from the same fields.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar


def setting(default, help: str, *, above: float | None = None, minimum: float | None = None,
            maximum: float | None = None, choices: tuple | None = None):
    """A dataclass field with its help text and limits (`above` is exclusive, the others inclusive)."""
    limits = {"above": above, "minimum": minimum, "maximum": maximum, "choices": choices}
    return field(default=default, metadata={"help": help, **{k: v for k, v in limits.items()
                                                             if v is not None}})


@dataclass(frozen=True)
class FieldInfo:
    name: str
    kind: type  # bool, int, float or str
    optional: bool  # None is allowed
    default: Any
    help: str
    limits: dict


@cache
def describe(cls) -> tuple[FieldInfo, ...]:
    """The settings of a dataclass, with their types resolved."""
    hints = typing.get_type_hints(cls)
    infos = []
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        kinds = typing.get_args(hints[f.name]) if isinstance(hints[f.name], types.UnionType) \
            else (hints[f.name],)
        kind = next(k for k in kinds if k is not type(None))
        infos.append(FieldInfo(f.name, kind, type(None) in kinds, f.default, f.metadata["help"],
                               {k: v for k, v in f.metadata.items() if k != "help"}))
    return tuple(infos)


def _is_a(value, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def problem(info: FieldInfo, value) -> str | None:
    """What is wrong with `value` for this setting, or None."""
    if value is None:
        return None if info.optional else "must be given"
    if not _is_a(value, info.kind):
        return f"must be a {info.kind.__name__}"
    if info.kind is float and not math.isfinite(value):
        return "must be a finite number"
    limits = info.limits
    if "choices" in limits and value not in limits["choices"]:
        return f"must be one of {', '.join(map(str, limits['choices']))}"
    if "above" in limits and not value > limits["above"]:
        return f"must be above {limits['above']}"
    if "minimum" in limits and not value >= limits["minimum"]:
        return f"must be at least {limits['minimum']}"
    if "maximum" in limits and not value <= limits["maximum"]:
        return f"must be at most {limits['maximum']}"
    return None


def check_fields(obj, prefix: str = "") -> None:
    """Raise ValueError, one sentence, for the first setting of `obj` out of its range."""
    for info in describe(type(obj)):
        value = getattr(obj, info.name)
        wrong = problem(info, value)
        if wrong:
            raise ValueError(f"{prefix}{info.name} ({value!r}) {wrong}")


@dataclass(frozen=True)
class MethodOptions:
    """Base of a method's options: each field is a `setting`; `check` adds rules across fields.
    `method` is set when the method is registered; `aliases` maps an older setting name to a
    field (so `temperature` still sets CMD's student temperature)."""

    method: ClassVar[str] = "method"
    aliases: ClassVar[dict[str, str]] = {}

    def __post_init__(self):
        check_fields(self, f"{self.method}: ")
        self.check()

    def check(self) -> None:
        """Rules across fields; raise ValueError with one sentence."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(info.name for info in describe(cls))
