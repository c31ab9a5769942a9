"""Where code runs, below any package that needs it: device names, image-loading settings and
torch's thread count.

``auto`` picks CUDA when present; each process of a multi-process ``torchrun`` launch takes
``cuda:LOCAL_RANK``. Image files are read in loader worker processes into pinned memory on CUDA
and in the process on the CPU (``auto``). These are the machine, not the science: they never
change a number.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from clipgap.errors import ConfigError

AUTO = "auto"
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"
# Data-loader worker processes per process when ``num_workers: auto`` on CUDA.
MAX_AUTO_WORKERS = 8


def _local_rank() -> int | None:
    """LOCAL_RANK of a multi-process torchrun launch, else None."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def device_name(name: str | None, *, where: str = "device") -> str:
    """The torch device ``name`` stands for, as a string; ``where`` names the option in errors.

    ``auto`` (or None) = ``cuda`` when CUDA is available, else ``cpu``. Under a multi-process
    ``torchrun`` launch (WORLD_SIZE > 1) ``cuda`` means this process's GPU, ``cuda:LOCAL_RANK``.
    Raises ConfigError (one line naming ``where``) for a name torch does not know, CUDA asked
    for where there is none, or a fixed ``cuda:N`` under a multi-process launch.
    """
    name = AUTO if name is None else name
    if not isinstance(name, str):
        raise ConfigError(f"{where}: expected a device name ({DEVICE_HELP}), got {name!r}")
    if name == AUTO:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{where}: unknown device {name!r}; expected {DEVICE_HELP}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{where}={name!r} but CUDA is not available here (use auto or cpu)")
    local = _local_rank()
    if device.type == "cuda" and local is not None:
        if device.index is not None and device.index != local:
            raise ConfigError(
                f"{where}={name!r} names one GPU, but torchrun started "
                f"{os.environ['WORLD_SIZE']} processes: use auto or cuda (each process takes "
                "cuda:LOCAL_RANK)"
            )
        return f"cuda:{local}"
    return str(device)


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def loader_options(num_workers, pin_memory, device: torch.device) -> dict:
    """``{"num_workers", "pin_memory"}`` for a DataLoader of image files feeding ``device``.

    ``auto`` (or None) workers: 0 off CUDA (read in the process), on CUDA
    ``min(8, usable CPUs / processes on this machine)``; ``auto`` pinning: on CUDA.
    """
    cuda = torch.device(device).type == "cuda"
    if num_workers in (None, AUTO):
        per_process = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
        num_workers = min(MAX_AUTO_WORKERS, _usable_cpus() // max(1, per_process)) if cuda else 0
    if pin_memory in (None, AUTO):
        pin_memory = cuda
    return {"num_workers": int(num_workers), "pin_memory": bool(pin_memory) and cuda}


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads, restoring the previous count on exit (None:
    leave torch's setting). The setting is the process's: one block at a time per process."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
