"""Rank helpers that also work without torch.distributed initialised (one process), and joining a
torchrun process group."""

import os

import torch
import torch.distributed as dist


def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def init_distributed(device: torch.device) -> tuple[torch.device, int, int, bool]:
    """Under torchrun (WORLD_SIZE > 1): join the process group (NCCL on CUDA, gloo on the CPU) and
    take this rank's GPU. Returns ``(device, rank, world size, distributed)``."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    return device, rank, world, distributed
