"""How to train: :class:`TrainConfig` (validated on construction) and the optimisers it names.

Named settings for a method (the ``paper`` and ``tuned`` presets) live in
:mod:`clipgap.training.presets`. Which settings enter a run's hash is declared on the fields
(:data:`clipgap.config.NOT_HASHED`, :data:`clipgap.config.NEW_SETTING`) and read by
:func:`clipgap.config.identity`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from clipgap.config import NEW_SETTING, NOT_HASHED
from clipgap.errors import ConfigError
from clipgap.registry import Registry
from clipgap.training.device import AUTO, DEVICE_HELP, PRECISIONS

optimizers: Registry[Callable] = Registry("optimizer")


@optimizers.register("sgd")
def _sgd(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


@optimizers.register("adamw")
def _adamw(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)


def _int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"train.{name} must be an integer >= {minimum}, got {value!r}")


def _number(name: str, value, lo: float, hi: float = math.inf, *, open_lo=False, open_hi=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = (
        ok and (value > lo if open_lo else value >= lo) and (value < hi if open_hi else value <= hi)
    )
    if not ok:
        lo_s = f"> {lo}" if open_lo else f">= {lo}"
        hi_s = "" if hi == math.inf else (f" and < {hi}" if open_hi else f" and <= {hi}")
        raise ConfigError(f"train.{name} must be a finite number {lo_s}{hi_s}, got {value!r}")


@dataclass(frozen=True)
class Holdout:
    """The validation hold-out of a train split: ``val_fraction`` of its images (0 = none), at
    most ``val_max``, drawn with ``val_seed`` (the names of :class:`TrainConfig`'s settings)."""

    val_fraction: float
    val_max: int
    val_seed: int

    def size(self, n: int) -> int:
        """Images held out of a train split of ``n``: ``round(val_fraction * n)``, at least one,
        at most ``val_max``; 0 when ``val_fraction`` is 0."""
        if self.val_fraction <= 0:
            return 0
        return min(self.val_max, max(1, int(round(self.val_fraction * n))))


@dataclass
class TrainConfig:
    """How to train. Defaults are the authors' protocol (the ``paper`` preset).

    ``optimizer``: ``sgd`` (with ``momentum``) or ``adamw``. Validation: ``val_fraction`` of
    the train split (0 = none: keep the last epoch), at most ``val_max`` images, drawn with
    ``val_seed``. The kept model is the trained epoch (>= 1) with the best validation accuracy,
    earliest on ties; ``select_start=True`` restores the old rule where the starting model
    (epoch 0) competes too and a later epoch must be strictly better to replace it.
    ``shots``: keep this many training images per class (sampled with ``seed`` from what is
    left after validation is held out; None = all), see
    :func:`clipgap.training.data.sample_shots`. ``max_steps`` caps optimiser steps over all
    epochs (tests, benches).
    ``pixel_cache_mb``: when the image tower trains, batches are gathered from the whole
    preprocessed train/validation split if it takes at most this many MB as float pixels
    (memory-mapped from the pixel cache, :mod:`clipgap.pixels`, else loaded into memory;
    transforms are deterministic); larger splits stream through a loader (0 = stream).
    ``cache_embeddings``: with a frozen image tower, train on cached image embeddings (else the
    encoder runs every step; same result, slower).

    Where and how fast (see :mod:`clipgap.training.device`): ``device`` ``auto`` = CUDA when
    present (``cuda:LOCAL_RANK`` under torchrun), None = wherever the model is. ``precision``
    ``auto`` = bf16 autocast on CUDA (TF32 allowed), float32 elsewhere; ``fp32`` / ``bf16``
    force one (it changes the numbers, so a forced value enters the run hash; ``auto`` is
    resolved per device and recorded with the run). ``bf16: true`` is the old spelling of
    ``precision: bf16``. ``num_workers`` / ``pin_memory``: how image files are read (worker
    processes, pinned memory; ``auto`` = on CUDA only); they never change the numbers.
    """

    optimizer: str = "sgd"
    lr: float = 1e-6
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = 10
    batch_size: int = 128
    val_fraction: float = 0.1
    val_max: int = 5000
    val_seed: int = 0
    seed: int = 0
    bf16: bool = False
    precision: str = field(default=AUTO, metadata=NEW_SETTING)
    device: str | None = field(default=AUTO, metadata=NOT_HASHED)
    num_workers: int | str = 0
    pin_memory: bool | str = field(default=AUTO, metadata=NEW_SETTING)
    max_steps: int | None = None
    eval_batch_size: int = 256
    pixel_cache_mb: float = 1024.0
    cache_embeddings: bool = True
    shots: int | None = None
    select_start: bool = False

    def __post_init__(self) -> None:
        if self.optimizer not in optimizers:
            raise ConfigError(
                f"train.optimizer must be one of {', '.join(optimizers.names())}, "
                f"got {self.optimizer!r}"
            )
        _number("lr", self.lr, 0.0, open_lo=True)
        _number("momentum", self.momentum, 0.0, 1.0, open_hi=True)
        _number("weight_decay", self.weight_decay, 0.0)
        _number("val_fraction", self.val_fraction, 0.0, 1.0, open_hi=True)
        _number("pixel_cache_mb", self.pixel_cache_mb, 0.0)
        for name, minimum in (("epochs", 1), ("batch_size", 1), ("val_max", 1)):
            _int(name, getattr(self, name), minimum)
        for name, minimum in (("val_seed", 0), ("seed", 0)):
            _int(name, getattr(self, name), minimum)
        if self.num_workers != AUTO:
            _int("num_workers", self.num_workers, 0)
        _int("eval_batch_size", self.eval_batch_size, 1)
        for name in ("max_steps", "shots"):
            if getattr(self, name) is not None:
                _int(name, getattr(self, name), 1)
        for name in ("bf16", "cache_embeddings", "select_start"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"train.{name} must be true or false, got {getattr(self, name)!r}"
                )
        self._check_machine()

    def _check_machine(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.bf16 and self.precision == "fp32":
            raise ConfigError(
                "train.bf16=true (the old name of precision: bf16) contradicts "
                "train.precision=fp32; set only precision"
            )
        if self.pin_memory != AUTO and not isinstance(self.pin_memory, bool):
            raise ConfigError(
                f"train.pin_memory must be true, false or auto, got {self.pin_memory!r}"
            )
        if self.device is None or self.device == AUTO:
            return
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ConfigError(
                f"train.device: unknown device {self.device!r}; expected {DEVICE_HELP}"
            ) from None

    @property
    def holdout(self) -> Holdout:
        """The validation hold-out these settings take from a train split."""
        return Holdout(self.val_fraction, self.val_max, self.val_seed)

    @property
    def requested_precision(self) -> str:
        """``precision``, with the old ``bf16: true`` read as ``bf16``."""
        return "bf16" if self.bf16 else self.precision
