"""Data-parallel distillation: two gloo processes on the CPU compute the loss and the student's
gradients of the single-process run on the same global batch, and `cmcd distill` runs under
torchrun with one JSON object on stdout."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from cmcd.train.loop import BatchSampler
from cmcd.train.losses import build_loss

ROOT = Path(__file__).resolve().parent.parent
WORLD_SIZE = 2
GLOBAL_BATCH = 8
CASES = [("cmc", {}), ("cmc", {"negatives": "bank"}), ("cmc", {"learn_temperature": True}),
         ("cmd", {}), ("cmd", {"negatives": "bank"}), ("cmc+l2", {}), ("l2", {})]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _student() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 8))


def _global_batch() -> dict:
    generator = torch.Generator().manual_seed(1)
    bank = F.normalize(torch.randn(20, 8, generator=generator), dim=1)
    index = torch.randperm(20, generator=generator)[:GLOBAL_BATCH]
    return {"x": torch.randn(GLOBAL_BATCH, 12, generator=generator), "teacher": bank[index],
            "index": index, "bank": bank}


def _loss_and_gradients(student: nn.Module, model: nn.Module, case, rows: torch.Tensor,
                        reduce=lambda terms: terms) -> dict:
    """The logged loss and the student's gradients after one backward pass over `rows`."""
    batch = _global_batch()
    loss = build_loss(case[0], **case[1])
    terms = loss(model(batch["x"][rows]), batch["teacher"][rows], index=batch["index"][rows],
                 bank=batch["bank"])
    sum(terms.values()).backward()
    logged = reduce(terms)
    return {"loss": float(sum(logged.values()).detach()),
            "grads": [p.grad.clone() for p in student.parameters()]}


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE))
    from cmcd.train.parallel import DataParallel

    strategy = DataParallel.from_environment(torch.device("cpu"))
    results = []
    for case in CASES:
        student = _student()
        rows = strategy.slice(torch.arange(GLOBAL_BATCH))
        results.append(_loss_and_gradients(student, strategy.wrap_model(student), case, rows,
                                           strategy.reduce))
    shards = list(strategy.shard(BatchSampler(20, GLOBAL_BATCH, torch.Generator().manual_seed(3))))
    strategy.close()
    torch.save({"results": results, "shards": shards}, f"{out}/rank{rank}.pt")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranks")
    mp.spawn(_rank, args=(_free_port(), str(out)), nprocs=WORLD_SIZE, join=True)
    return [torch.load(out / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]


@pytest.mark.parametrize("position", range(len(CASES)), ids=[f"{m}-{s}" for m, s in CASES])
def test_two_ranks_match_one_process_on_the_global_batch(ranks, position):
    student = _student()
    single = _loss_and_gradients(student, student, CASES[position], torch.arange(GLOBAL_BATCH))
    for rank in ranks:
        result = rank["results"][position]
        assert result["loss"] == pytest.approx(single["loss"], rel=1e-5)
        for got, expected in zip(result["grads"], single["grads"], strict=True):
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_ranks_take_disjoint_halves_of_the_same_batches(ranks):
    batches = list(BatchSampler(20, GLOBAL_BATCH, torch.Generator().manual_seed(3)))
    halves = [rank["shards"] for rank in ranks]
    assert len(halves[0]) == len(batches) == 2
    for batch, first, second in zip(batches, *halves, strict=True):
        assert torch.equal(torch.cat([first, second]), batch)


def test_distill_under_torchrun_reports_two_processes_once():
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
               str(WORLD_SIZE), "-m", "cmcd", "distill", "--pair", "digits-sketch", "--method",
               "cmc", "--device", "cpu", "--epochs", "1", "--n-pairs", "1024", "--width", "8",
               "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads(done.stdout)  # one object: a second one would not parse
    assert metrics["world_size"] == WORLD_SIZE
    assert metrics["method"] == "cmc" and metrics["n_pairs"] == 1024


# --- benchmarks: workers spread over the GPUs -----------------------------------------------------

def test_benchmark_workers_take_the_gpus_in_turn():
    from cmcd.bench.runner import worker_devices

    assert worker_devices("auto", 5, gpu_count=2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert worker_devices("cuda", 3, gpu_count=4) == ["cuda:0", "cuda:1", "cuda:2"]
    assert worker_devices("auto", 2, gpu_count=0) == ["auto", "auto"]
    assert worker_devices("cpu", 3, gpu_count=2) == ["cpu", "cpu", "cpu"]


def test_benchmark_device_overrides_each_run_and_auto_keeps_them():
    from cmcd.bench.runner import on_device
    from cmcd.train.config import DistillConfig

    planned = [("main", DistillConfig(seed=0)), ("main", DistillConfig(seed=1, device="cuda"))]
    assert [config.device for _, config in on_device(planned, "cpu")] == ["cpu", "cpu"]
    assert on_device(planned, "auto") == planned

