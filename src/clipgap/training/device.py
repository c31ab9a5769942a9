"""Where a run executes and how fast: device, precision, peak memory.

``device: auto`` picks CUDA when present (each process of a ``torchrun`` launch takes
``cuda:LOCAL_RANK``; names and image-loading settings live in :mod:`clipgap.devices`), and
``precision: auto`` trains in bf16 autocast on CUDA (TF32 allowed) and in float32 elsewhere.
"""

from __future__ import annotations

import contextlib
import resource
import sys

import torch

from clipgap.devices import AUTO, DEVICE_HELP, device_name, loader_options

__all__ = [
    "AUTO",
    "DEVICE_HELP",
    "PRECISIONS",
    "autocast",
    "device_name",
    "fast_math",
    "loader_options",
    "peak_memory_mb",
    "resolve_device",
    "resolve_precision",
]

PRECISIONS = (AUTO, "fp32", "bf16")


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


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MB: CUDA peak allocated on GPU, the process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024
