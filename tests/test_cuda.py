"""The same library on a CUDA GPU: skipped where there is none (CI), run on a GPU machine with
`python -m pytest tests/test_cuda.py`."""

import math

import pytest
import torch
import torch.nn.functional as F

from cmcd.train.config import DistillConfig
from cmcd.train.distill import distill
from cmcd.train.losses import LOSSES, build_loss

pytestmark = [pytest.mark.cuda,  # the only tests that may skip under CI=true
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (skipped in CI)")]

DETERMINISTIC_LOSSES = ("cmc", "cmd", "l2", "socket", "rkd", "pkt", "affinity", "cmc+l2")  # crd: random draws


@pytest.mark.parametrize("name", DETERMINISTIC_LOSSES)
def test_losses_agree_on_cpu_and_cuda(name):
    assert name in LOSSES
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(64, 32, generator=generator)
    teacher = F.normalize(torch.randn(64, 32, generator=generator), dim=1)
    index = torch.arange(64)

    def terms(device):
        loss = build_loss(name).to(device)
        return loss(student.to(device), teacher.to(device), index=index.to(device), bank=teacher.to(device))

    on_cpu, on_cuda = terms("cpu"), terms("cuda")
    assert on_cpu.keys() == on_cuda.keys()
    for key in on_cpu:
        assert on_cuda[key].item() == pytest.approx(on_cpu[key].item(), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("pair", ["digits-sketch", "digits-depth", "digits-audio"])
def test_a_short_distillation_runs_on_cuda_and_learns(pair):
    # 60 steps: about 0.7 zero-label accuracy on the CPU (chance is 0.1); 16 steps stay at chance.
    run = distill(DistillConfig(pair=pair, steps=60, n_pairs=4096, width=8, device="cuda"))
    metrics = run.metrics
    assert metrics["device"] == "cuda"
    assert metrics["steps"] == 60
    assert metrics["zero_label_acc"]["head"] > 0.4
    assert all(math.isfinite(entry["loss"]) for entry in run.history)
    assert next(run.student.parameters()).device.type == "cpu"  # handed back on the CPU
