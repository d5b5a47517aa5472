"""Where and how training runs: device choice, mixed precision, random generators; and where the
library's log messages show (stderr, for the command line and the app's server log)."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
from collections.abc import Iterator

import torch

DEVICES = ("auto", "cpu", "cuda", "mps")  # what a run's `device` setting may name


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; 'cuda:N' is the N-th GPU; an unavailable
    device is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda:"):
        return _cuda_device(name)
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; valid: auto, cpu, cuda, cuda:N, mps")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA GPU is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps asked for, but Apple MPS is not available")
    return torch.device(name)


def _cuda_device(name: str) -> torch.device:
    """'cuda:N', checked against the GPUs there are."""
    index = name.removeprefix("cuda:")
    if not index.isdigit():
        raise ValueError(f"unknown device {name!r}; a GPU is cuda:N with N a number from 0")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if int(index) >= count:
        raise ValueError(f"device {name} asked for, but this machine has {count} CUDA GPUs")
    return torch.device("cuda", int(index))


def describe_device(device: torch.device) -> str:
    """The device in words, for benchmark reports: 'NVIDIA H100 80GB HBM3' or 'CPU (x86_64, 2 cores)'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def autocast(device: torch.device):
    """bf16 mixed precision on CUDA; full precision elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def generator(device: torch.device, seed: int) -> torch.Generator:
    """A run's own random stream on `device`; nothing process-wide is seeded."""
    return torch.Generator(device=device).manual_seed(seed)


def show_messages_on_stderr(level: int = logging.INFO) -> logging.Handler:
    """Show the library's log messages at `level` and above on stderr as "cmcd: MESSAGE" (the
    data it builds, a damaged cache file it rebuilds); the one place that sets up logging output
    (the library only logs), for the command line and the app's server log alike."""
    logger = logging.getLogger("cmcd")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("cmcd: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


@contextlib.contextmanager
def progress_on_stderr(level: int = logging.INFO) -> Iterator[None]:
    """show_messages_on_stderr while the block runs."""
    logger = logging.getLogger("cmcd")
    earlier_level = logger.level
    handler = show_messages_on_stderr(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(earlier_level)
