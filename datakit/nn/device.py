"""Devices, thread budgets and the torch.distributed context of a training or evaluation process.

``torchrun --nproc_per_node N`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init_distributed` reads them and starts the process group (``nccl`` on CUDA, ``gloo`` on
CPU). Without them the process runs alone (rank 0 of 1) and nothing is initialized.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from datakit.errors import RecipeError

__all__ = ["DistContext", "cleanup_distributed", "configure_threads", "init_distributed", "select_device"]


def select_device(name: str | None = "auto", *, local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Under torchrun, ``auto`` and ``cuda`` pick the GPU ``local_rank``. Asking for CUDA on a machine without it
    raises :class:`RecipeError`.
    """
    name = (name or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RecipeError(f"device {name!r} requested but CUDA is not available (use --device cpu)")
        if name == "cuda":
            return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        try:
            index = int(name.split(":", 1)[1])
        except ValueError:
            raise RecipeError(f"bad device {name!r}: use auto, cpu, cuda or cuda:N") from None
        if not 0 <= index < torch.cuda.device_count():
            raise RecipeError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    raise RecipeError(f"bad device {name!r}: use auto, cpu, cuda or cuda:N")


def configure_threads(torch_threads: int | None = None) -> None:
    """Thread budget of one process: torch intra-op threads, OpenCV threads and Blosc (``BLOSC_NTHREADS``).

    ``None`` divides the machine's cores by the number of local processes (``LOCAL_WORLD_SIZE`` under torchrun).
    """
    if torch_threads is None:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        torch_threads = max(1, (os.cpu_count() or 1) // max(1, local))
    torch.set_num_threads(torch_threads)
    os.environ.setdefault("BLOSC_NTHREADS", "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - OpenCV is a dependency
        pass


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str | None = "auto") -> tuple[DistContext, torch.device]:
    """Start the process group when launched by torchrun; return the context and this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = select_device(device_name, local_rank=local_rank)
    if world <= 1:
        return DistContext(), device
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistContext(rank, world, local_rank, backend), device


def cleanup_distributed() -> None:
    """Destroy the process group if one was started."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
