"""The pixel cache's settings and what of a transform it may cache.

``$CLIPGAP_PIXEL_CACHE`` (``on`` by default, ``off``) and ``$CLIPGAP_PIXEL_CACHE_SIZE`` (the
directory's size cap, default ``20G``). A transform is cacheable when it is a ``Compose`` whose
steps before ``ToTensor`` are known to be deterministic (resize, centre crop, RGB conversion)
and which has at most one ``Normalize`` after it: :func:`recipe` splits it there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from clipgap.data.base import digest
from clipgap.errors import ConfigError

ENABLED_ENV = "CLIPGAP_PIXEL_CACHE"
SIZE_ENV = "CLIPGAP_PIXEL_CACHE_SIZE"
DEFAULT_SIZE = "20G"
# transform steps before ToTensor known to be deterministic
_DETERMINISTIC = {"Resize", "CenterCrop", "MaybeConvertMode", "ToRGB", "ResizeKeepRatio"}
_TO_TENSOR = {"ToTensor", "MaybeToTensor"}


def enabled() -> bool:
    """``$CLIPGAP_PIXEL_CACHE``: on (unset, ``on``, ``1``, ``true``) or off (``off``, ``0``)."""
    raw = os.environ.get(ENABLED_ENV, "on").strip().lower()
    if raw in ("", "on", "1", "true", "yes"):
        return True
    if raw in ("off", "0", "false", "no"):
        return False
    raise ConfigError(f"environment variable {ENABLED_ENV}={raw!r}: expected on or off")


def parse_size(text: str, where: str = SIZE_ENV) -> int:
    """Bytes of a size such as ``500M``, ``20G``, ``1.5T`` or ``1000000`` (> 0)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    size = 0
    if found:
        size = int(float(found.group(1)) * 1024 ** "_KMGT".index(found.group(2).upper() or "_"))
    if size <= 0:
        raise ConfigError(
            f"environment variable {where}={text!r}: expected a size above 0 such as 500M, "
            f"20G or 1.5T (to turn the pixel cache off set {ENABLED_ENV}=off)"
        )
    return size


def size_cap() -> int:
    """The cache's size cap in bytes (``$CLIPGAP_PIXEL_CACHE_SIZE``; unset or empty: 20G)."""
    return parse_size(os.environ.get(SIZE_ENV, "").strip() or DEFAULT_SIZE)


@dataclass(frozen=True)
class Recipe:
    """A transform as ``resize`` (PIL -> PIL: what is cached) then :meth:`finish` (uint8 batch
    -> model input); ``key`` names the whole transform in cache keys."""

    steps: tuple
    normalise: Callable | None
    key: str

    def resize(self, image):
        for step in self.steps:
            image = step(image)
        return image

    def finish(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> float (N, 3, H, W), as ``ToTensor`` (+ ``Normalize``) do: the
        same elementwise operations (x / 255, then (x - mean) / std), done in place."""
        x = batch.to(torch.float32)
        x.div_(255)
        if self.normalise is not None:
            mean = torch.as_tensor(self.normalise.mean, dtype=x.dtype, device=x.device)
            std = torch.as_tensor(self.normalise.std, dtype=x.dtype, device=x.device)
            x.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))
        return x


def _name(step) -> str:
    return getattr(step, "__name__", None) or type(step).__name__


def _step_key(step) -> str:
    if hasattr(step, "__qualname__"):  # a function: named, not its address
        return f"{step.__module__}.{step.__qualname__}"
    return repr(step)


def recipe(transform) -> Recipe | None:
    """``transform`` split at its ``ToTensor``, or None when it cannot be cached."""
    steps = list(getattr(transform, "transforms", None) or [])
    cut = next((i for i, s in enumerate(steps) if _name(s) in _TO_TENSOR), None)
    if cut is None:
        return None
    before, after = steps[:cut], steps[cut + 1 :]
    if not all(_name(s) in _DETERMINISTIC or "rgb" in _name(s).lower() for s in before):
        return None
    if len(after) > 1 or (after and _name(after[0]) != "Normalize"):
        return None
    key = digest([_step_key(s) for s in steps])
    return Recipe(tuple(before), after[0] if after else None, key)
