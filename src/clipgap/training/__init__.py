"""Fine-tuning: one loop for every method, its configuration, presets, data and evaluation.

Modules, each owning one thing:

- :mod:`~clipgap.training.config`: :class:`TrainConfig` (validated) and the optimisers.
- :mod:`~clipgap.training.presets`: the ``paper`` and ``tuned`` presets, kept as data in
  ``presets.yaml`` with where their numbers come from.
- :mod:`~clipgap.training.data`: the validation split, few-shot sampling, batches and the
  pixel / embedding caches a run reads.
- :mod:`~clipgap.training.loop`: :func:`finetune`, the one training loop.
- :mod:`~clipgap.training.callbacks`: :class:`TrainCallback`, what the loop tells observers.
- :mod:`~clipgap.training.result`: :class:`FinetuneResult`, what a run returns.
- :mod:`~clipgap.training.evaluate`: top-1 :func:`accuracy` and the :func:`zero_shot_model`.
- :mod:`~clipgap.training.forward`: the training forward (images -> logits).
- :mod:`~clipgap.training.device`: where a run executes (device, precision, data loading) and
  its peak memory.
- :mod:`~clipgap.training.distributed`: one run on several processes (``torchrun``, DDP).

The model every method produces is :class:`clipgap.model.AdaptedModel`.
"""

from __future__ import annotations

from clipgap.training.callbacks import TrainCallback
from clipgap.training.config import Holdout, TrainConfig, optimizers
from clipgap.training.data import check_shots, sample_shots, split_validation, training_splits
from clipgap.training.distributed import is_main_process
from clipgap.training.evaluate import accuracy, zero_shot_model
from clipgap.training.loop import finetune
from clipgap.training.presets import (
    PAPER,
    TUNED,
    Preset,
    family_preset,
    preset,
    presets,
    search_space,
)
from clipgap.training.result import FinetuneResult

__all__ = [
    "PAPER",
    "TUNED",
    "FinetuneResult",
    "Holdout",
    "Preset",
    "TrainCallback",
    "TrainConfig",
    "accuracy",
    "check_shots",
    "finetune",
    "is_main_process",
    "optimizers",
    "family_preset",
    "preset",
    "presets",
    "search_space",
    "sample_shots",
    "split_validation",
    "training_splits",
    "zero_shot_model",
]
