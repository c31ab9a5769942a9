"""Where a run executes and what memory it took (the machine, not the science)."""

from __future__ import annotations

import resource
import sys

import torch

from clipgap.errors import ConfigError


def resolve_device(name: str | None, model) -> torch.device:
    """``torch.device(name)``, or the device of ``model``'s parameters when ``name`` is None.

    Raises ConfigError for an unknown device name or CUDA asked for where there is none.
    """
    if name is None:
        return next(model.parameters()).device
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but CUDA is not available here")
    return device


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MB: CUDA peak allocated on GPU, the process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024
