"""Where a run executes and how fast: device, precision, data-loader settings, peak memory.

These are the machine, not the science: ``device: auto`` picks CUDA when present (each
process of a ``torchrun`` launch takes ``cuda:LOCAL_RANK``), ``precision: auto`` trains in bf16
autocast on CUDA and in float32 elsewhere, and ``num_workers`` / ``pin_memory`` ``auto`` read
image files in worker processes into pinned memory on CUDA only (in-process on CPU).
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys

import torch

from clipgap.errors import ConfigError

AUTO = "auto"
PRECISIONS = (AUTO, "fp32", "bf16")
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"
# Data-loader worker processes per training process when ``num_workers: auto`` on CUDA.
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


def resolve_device(name: str | None, model) -> torch.device:
    """The device a run trains on: ``name`` (see :func:`device_name`), or the device of
    ``model``'s parameters when ``name`` is None. Raises ConfigError for a bad name."""
    if name is None:
        return next(model.parameters()).device
    return torch.device(device_name(name, where="train.device"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16``: ``auto`` is bf16 on CUDA, fp32 elsewhere."""
    if precision == AUTO:
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(precision: str, device: torch.device):
    """The autocast context of a resolved ``precision`` (none for fp32)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@contextlib.contextmanager
def fast_math(device: torch.device, precision: str):
    """On CUDA with bf16 training, let float32 matmuls and convolutions use TF32 while the block
    runs (restored after); ``fp32`` stays strict float32."""
    if device.type != "cuda" or precision == "fp32":
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


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


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MB: CUDA peak allocated on GPU, the process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024
