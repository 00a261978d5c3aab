"""Distributed training plumbing for ``torchrun`` (docs/training.md, Distributed training).

This module owns who a training process is and how the processes meet: the rank and world
size read from ``torchrun``'s environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), setting
up the process group (NCCL on GPUs, gloo on CPU) and tearing it down, the device of a rank,
the barrier, the DDP wrapper, and the autograd-aware all-gather of a step's outputs, so that
the miners, the covariance and every loss term see the global batch (what PML's distributed
wrappers do for embeddings, extended to attention and logits). ``engine/train.py`` calls it;
``engine/cli.py`` tears the group down when ``tan train`` ends. With one process (no
``torchrun``) every function here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..config import Config
from ..models import TANOutput


@dataclass(frozen=True)
class DistContext:
    """This process's place among the training processes: ``rank`` of ``world``."""

    rank: int = 0
    world: int = 1

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that logs and writes the run directory."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()


def setup(config: Config) -> DistContext:
    """Rank and world from the environment; joins the process group under ``torchrun``
    (unless one is already initialised)."""
    ctx = DistContext(rank=int(os.environ.get("RANK", "0")), world=int(os.environ.get("WORLD_SIZE", "1")))
    if ctx.distributed:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() and config.device != "cpu" else "gloo")
    return ctx


def teardown() -> None:
    """Destroy the process group if one is initialised (the end of a ``tan train`` command)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device, ctx: DistContext) -> torch.device:
    """Under ``torchrun`` on GPUs, each process takes the GPU of its ``LOCAL_RANK``."""
    if ctx.distributed and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def wrap(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """The network that trains: ``model`` itself, or its DDP wrapper (gradients averaged)."""
    if ctx.distributed:
        return torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    return model


def gather(out: TANOutput, labels: torch.Tensor) -> tuple[TANOutput, torch.Tensor]:
    """All-gather outputs (with gradients) and labels across processes."""
    import torch.distributed as dist
    from torch.distributed.nn.functional import all_gather

    cat = [torch.cat(all_gather(t.contiguous())) for t in out]
    lab = [torch.empty_like(labels) for _ in range(dist.get_world_size())]
    dist.all_gather(lab, labels)
    return TANOutput(*cat), torch.cat(lab)
