"""Limited data: k training images per class, drawn from the training portion of a task.

The training portion is the train split minus the trainer's validation hold-out
(:func:`clipgap.train.split_validation`), so validation never overlaps the k-shot images, and
its size does not depend on k. The k images of each class are the first k of a permutation
drawn with the run's seed, so for one seed the 4-shot images are among the 16-shot ones.

``check_shots`` and ``sample_shots`` are the only entry points the study and the trainer call.
"""

from __future__ import annotations

import numpy as np

from clipgap.data import Task
from clipgap.errors import ConfigError


def training_portion(task: Task, train) -> Task:
    """The images a run trains on before shots are drawn: ``task`` (a train split) minus the
    validation hold-out of the run's :class:`~clipgap.presets.TrainConfig` ``train``."""
    from clipgap.train import split_validation

    fit, _ = split_validation(
        task, train.val_fraction, max_images=train.val_max, seed=train.val_seed
    )
    return fit


def check_shots(task: Task, shots: int | None) -> None:
    """Raise a one-line ConfigError when a class of ``task`` has fewer than ``shots`` images
    (None = the full split: nothing to check)."""
    if shots is None:
        return
    counts = np.bincount(task.labels, minlength=task.n_classes)
    smallest = int(np.argmin(counts))
    if counts[smallest] < shots:
        raise ConfigError(
            f"shots {shots}: class {task.class_names[smallest]!r} of task {task.name} has only "
            f"{int(counts[smallest])} training images (train split minus validation); choose "
            f"shots <= {int(counts[smallest])}"
        )


def sample_shots(task: Task, shots: int | None, *, seed: int) -> Task:
    """``shots`` images per class of ``task``, drawn with ``seed`` (None = ``task`` itself).

    Nested in ``shots`` for one seed; the order of the kept images follows ``task``.
    """
    if shots is None:
        return task
    check_shots(task, shots)
    rng = np.random.default_rng(seed)
    keep = [
        rng.permutation(np.flatnonzero(task.labels == c))[:shots] for c in range(task.n_classes)
    ]
    return task.subset(np.sort(np.concatenate(keep)), split=f"{task.split}-{shots}shot")
