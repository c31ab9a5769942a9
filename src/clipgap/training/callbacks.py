"""What :func:`clipgap.training.finetune` tells an observer while it trains."""

from __future__ import annotations

from typing import Protocol

__all__ = ["TrainCallback"]


class TrainCallback(Protocol):
    """An observer of one training run (e.g. :class:`clipgap.tracking.Tracker`).

    Callbacks only read: they are called with plain Python numbers after the optimiser step,
    never with tensors, so they cannot change what is trained.
    """

    def on_step(self, step: int, *, loss: float, lr: float) -> None:
        """After optimiser step ``step`` (1-based, counted over the run): the loss of its batch
        and the learning rate it used."""

    def on_epoch(self, epoch: int, stats: dict) -> None:
        """After epoch ``epoch`` (0 = the starting model, before any step): a copy of its
        history entry (``train_loss``, ``train_accuracy``, ``val_accuracy``, ``steps``,
        ``seconds``; a value is None where undefined)."""
