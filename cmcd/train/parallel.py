"""Data-parallel training under torchrun: the `DataParallel` strategy of the training loop.

    torchrun --standalone --nproc_per_node 2 -m cmcd distill --pair digits-sketch --json

torchrun starts one process per rank and sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous
address; each rank builds the same run from the same seed, so every rank draws the same batch
order and keeps its own slice of every global batch (`--batch-size` is the global batch). The
student is wrapped in DistributedDataParallel; CMC and CMD gather the features of all ranks in
the loss (`cmcd.train.losses.gather`), so the loss is the one a single process would compute on
the global batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) asked for more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that evaluates, writes and prints (read from
    torchrun's environment, so it holds before the process group starts and after it ends)."""
    return not launched_by_torchrun() or int(os.environ.get("RANK", "0")) == 0


def rank_device(device: torch.device) -> torch.device:
    """This rank's own device: cuda:LOCAL_RANK on CUDA, the device itself elsewhere."""
    if device.type != "cuda":
        return device
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


class DataParallel:
    """The loop's data-parallel strategy: DDP around the student, this rank's slice of every
    global batch, and logged loss terms averaged over the ranks."""

    def __init__(self, device: torch.device):
        self.device = device
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()

    @classmethod
    def from_environment(cls, device: torch.device) -> DataParallel:
        """Join torchrun's process group (nccl on CUDA, gloo elsewhere), once per process."""
        if not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(device)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        # SyncBatchNorm runs on GPUs only: on the CPU, batch norm uses each rank's own statistics.
        if self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            return nn.parallel.DistributedDataParallel(model, device_ids=[self.device])
        return nn.parallel.DistributedDataParallel(model)

    def shard(self, batches: Iterable) -> Iterator[Tensor]:
        for batch in batches:
            yield self.slice(batch)

    def slice(self, batch: Tensor) -> Tensor:
        """This rank's equal share of a global batch (in order: rank 0 takes the first)."""
        if len(batch) % self.world_size:
            raise ValueError(f"a batch of {len(batch)} pairs does not split evenly over "
                             f"{self.world_size} processes; choose a batch size divisible by it")
        size = len(batch) // self.world_size
        return batch[self.rank * size: (self.rank + 1) * size]

    def reduce(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        names = list(terms)
        if not names:
            return terms
        values = torch.stack([terms[name].detach().float() for name in names])
        dist.all_reduce(values)
        values /= self.world_size
        return dict(zip(names, values, strict=True))

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()
