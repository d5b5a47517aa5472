"""`cmcd bench speed`: how close distillation runs to the student's raw training speed.

Three figures for the default student, both taken in a warmed-up process: pairs/s of a default
distillation run (batch gathering, loss, logging included; per-epoch validation excluded), the same
model's pure forward+backward+step throughput on identical batches already on the device, and
their ratio. Plus the wall time of a default `cmcd distill` in a new process.
"""

from __future__ import annotations

import subprocess
import sys
import time

import torch

from cmcd import runtime
from cmcd.modalities import build_encoder, pairs
from cmcd.train.config import DistillConfig
from cmcd.train.distill import distill
from cmcd.train.loop import LoopSettings, train_loop


def pure_training_throughput(modality: str, input_shape: tuple[int, ...], width: int,
                             batch_size: int, steps: int, device: torch.device) -> float:
    """Samples/s of forward, backward and AdamW step on one fixed batch (no data work at all),
    through the same training loop as distillation."""
    student = build_encoder(modality, width=width).to(device)
    batch = torch.rand(batch_size, *input_shape, device=device)
    settings = LoopSettings([student], lr=1e-3, weight_decay=0.01, device=device)
    # No warm-up is left out: the distillation figure pays its first steps too.
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    train_loop(lambda x: {"dummy": student(x).float().square().mean()}, [batch] * steps, 1, settings)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - started)


def cli_wall_seconds(pair: str, device: str) -> float:
    """Wall time of a default `cmcd distill` in a new process, start-up and evaluation included."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cmcd", "distill", "--pair", pair, "--device", device,
                    "--json"], check=True, capture_output=True)
    return time.perf_counter() - started


def run(pair: str = "digits-sketch", device: str = "auto") -> dict:
    cli_seconds = cli_wall_seconds(pair, device)
    config = DistillConfig(pair=pair, device=device)
    # One short untimed run first, so both figures below are taken in a warmed-up process.
    distill(DistillConfig(pair=pair, device=device, epochs=1, n_pairs=2048))
    metrics = distill(config).metrics
    data = pairs.load_pair(pair, progress=lambda message: None)
    steps = max(1, metrics["n_pairs"] // config.batch_size) * config.epochs
    pure = pure_training_throughput(data.spec.target, tuple(data.pairs.target.shape[1:]),
                                    config.width, config.batch_size, steps,
                                    runtime.resolve_device(device))
    return {
        "pair": pair, "method": config.method, "device": metrics["device"],
        "torch_threads": torch.get_num_threads(), "batch_size": config.batch_size,
        "width": config.width, "epochs": config.epochs, "n_pairs": metrics["n_pairs"],
        "distill_pairs_per_s": metrics["pairs_per_s"],
        "pure_train_samples_per_s": round(pure, 1),
        "ratio": round(metrics["pairs_per_s"] / pure, 3),
        "cli_distill_wall_s": round(cli_seconds, 2),
        "distill_wall_s": metrics["wall_s"], "distill_train_s": metrics["train_s"],
        "zero_label_acc": metrics["zero_label_acc"],
    }


def format_report(report: dict) -> str:
    return "\n".join([
        f"{report['pair']} {report['method']}, width {report['width']}, batch "
        f"{report['batch_size']}, {report['epochs']} epochs x {report['n_pairs']} pairs on "
        f"{report['device']} ({report['torch_threads']} threads):",
        f"  distillation            {report['distill_pairs_per_s']:10.1f} pairs/s",
        f"  pure forward+backward   {report['pure_train_samples_per_s']:10.1f} samples/s",
        f"  ratio                   {report['ratio']:10.3f}",
        f"  `cmcd distill` wall     {report['cli_distill_wall_s']:10.1f} s (new process, "
        f"start-up and evaluation included)",
    ])
