"""Experiment tracking: a run's metrics to TensorBoard event files and to Weights & Biases.

What a tracked run writes:

- per optimiser step: ``train/loss`` (the batch loss) and ``train/lr`` (the learning rate the
  step used), x-axis the global step (1-based);
- per epoch: ``epoch/val_accuracy``, ``epoch/train_loss``, ``epoch/train_accuracy``,
  ``epoch/steps`` and ``epoch/seconds``, x-axis the epoch (0 = the starting model: validation
  only);
- at the end (:meth:`Tracker.log_record`): fine-tuned and zero-shot ID / DG / control
  accuracies, dID, dDG, CF and the task's difficulty measures (:func:`record_summary`).

Backends (:mod:`~clipgap.tracking.backends`): ``tensorboard`` (event files under
``RUN_DIR/tb/``; ``pip install 'clipgap[tracking]'``) and ``wandb`` (a run under
``RUN_DIR/wandb/``; ``pip install 'clipgap[wandb]'``).

Tracking only reads: a tracked run trains exactly the numbers an untracked one does. It says
where results go, not what a run computes, so it never enters a run's hash.

>>> with track_run(["tensorboard"], run_dir, record.config) as tracker:  # doctest: +SKIP
...     result = finetune(backbone, task, "lora", callbacks=[tracker])
...     tracker.log_record(record)
"""

from __future__ import annotations

from clipgap.tracking.backends import backends
from clipgap.tracking.summary import record_summary
from clipgap.tracking.tracker import (
    KINDS,
    Tracker,
    default_tracking,
    open_tracker,
    track_run,
    tracking_kinds,
)

__all__ = [
    "KINDS",
    "Tracker",
    "backends",
    "default_tracking",
    "open_tracker",
    "record_summary",
    "track_run",
    "tracking_kinds",
]
