"""Choosing a search's trial per task x method x seed, on validation accuracy only.

A search study (:mod:`clipgap.study.search`) runs K trials of every (task, method, seed); the
report keeps one of them: the trial with the highest validation accuracy (the trainer's
hold-out from the train split, never test data), ties to the lower trial index. Runs without
a validation accuracy (failed, or trained without a hold-out) are never selected; a group
where no run has one has no selected trial. Runs outside a search are their own choice: always
selected (:func:`selection_flags`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

GROUP = ("task", "method", "seed")
RUN_GROUP = ("model", "task", "method", "preset", "shots", "seed")
"""What a study's trials are chosen among: one run per model x task x method x preset x shots x
seed, the axes a search adds its trials to."""


def in_search(record) -> bool:
    """Whether ``record`` is a trial of a search (its config has a ``trial``)."""
    return isinstance((getattr(record, "config", None) or {}).get("trial"), dict)


def trial_index(record) -> int:
    """A run's trial index: ``config["trial"]["index"]``; 0 for a run outside a search."""
    trial = (getattr(record, "config", None) or {}).get("trial")
    return int(trial["index"]) if isinstance(trial, dict) and "index" in trial else 0


def _field(record, name: str) -> Any:
    return record[name] if isinstance(record, dict) else getattr(record, name)


def _score(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def select_trials(
    records: Sequence,
    *,
    group: Sequence[str] = GROUP,
    trial: Callable[[Any], int] = trial_index,
) -> list[bool]:
    """One flag per record: True for the selected trial of its group.

    ``records``: run records (or dicts) with the ``group`` fields and ``val_accuracy``;
    ``trial`` gives a record's trial index. Within each group the highest validation accuracy
    wins and ties go to the lower trial index (then the earlier record), so exactly one record
    per group with any validation accuracy is True. Pure: the records are not changed.
    """
    best: dict[tuple, tuple[float, int, int]] = {}
    for position, record in enumerate(records):
        score = _score(_field(record, "val_accuracy"))
        if score is None:
            continue
        key = tuple(_field(record, name) for name in group)
        candidate = (-score, trial(record), position)
        if key not in best or candidate < best[key]:
            best[key] = candidate
    chosen = {entry[2] for entry in best.values()}
    return [position in chosen for position in range(len(records))]


def selected(records: Iterable, **kwargs) -> list:
    """The selected records of :func:`select_trials`, in their order."""
    records = list(records)
    return [r for r, keep in zip(records, select_trials(records, **kwargs), strict=True) if keep]


def selection_flags(records: Sequence) -> list[bool]:
    """One flag per run record: runs outside a search are always selected; a search's trials
    by :func:`select_trials` within :data:`RUN_GROUP` (exactly one per group with a
    validation accuracy). The one rule the report, ``results.csv`` and the CLI summary use."""
    records = list(records)
    searched = [i for i, r in enumerate(records) if in_search(r)]
    flags = [True] * len(records)
    chosen = select_trials([records[i] for i in searched], group=RUN_GROUP)
    for i, keep in zip(searched, chosen, strict=True):
        flags[i] = keep
    return flags
