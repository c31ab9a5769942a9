"""The nested measure ranking of a study table: per outcome, the nested LOTO error of choosing a
predictor (a measure, or ridge over a few) inside each fold, against the nested difficulty-free
baseline, with its permutation p-value (:mod:`clipgap.predict.honest`).

The targets of one outcome are the study's methods (not the pooled arm); errors are averaged
over methods. A measure undefined on some of the outcome's tasks is left out (said once).
"""

from __future__ import annotations

import numpy as np

from clipgap.errors import DataError, UnknownNameError, suggest
from clipgap.predict.honest import NestedOptions, NestedQuality, nested_quality
from clipgap.predict.table import StudyTable
from clipgap.record import DIFFICULTY_KEYS
from clipgap.record import PREDICTED_OUTCOMES as OUTCOMES
from clipgap.stats.nested import MIN_NESTED_TASKS


def check_measures(names) -> tuple[str, ...]:
    """Measure names, each one of the record's difficulty keys."""
    for name in names:
        if name not in DIFFICULTY_KEYS:
            raise UnknownNameError(
                f"unknown measure {name!r}{suggest(str(name), DIFFICULTY_KEYS)}; "
                f"choose from {', '.join(DIFFICULTY_KEYS)}"
            )
    return tuple(names)


def outcome_tasks(table: StudyTable, outcome: str, methods) -> tuple[str, ...]:
    """The tasks on which every one of ``methods`` ran and has ``outcome``."""
    return tuple(t for t in table.tasks if all((m, t, outcome) in table.values for m in methods))


def measure_columns(table: StudyTable, tasks, names=None) -> tuple[dict, list[str]]:
    """(name -> values on ``tasks``) for the measures defined on every one of them, and a note
    per measure left out because it is missing on some."""
    names = DIFFICULTY_KEYS if names is None else check_measures(names)
    columns, notes = {}, []
    for name in names:
        missing = table.missing_measure(name, tasks)
        if missing:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            notes.append(f"{name} left out (not measured on {len(missing)} task(s): {shown})")
        else:
            columns[name] = table.measure(name, tasks)
    return columns, notes


def class_counts(table: StudyTable, tasks) -> dict[str, np.ndarray]:
    return {"n_classes": np.array([table.difficulty[t].n_classes for t in tasks], float)}


def nested_by_outcome(
    table: StudyTable, *, options: NestedOptions | None = None, measures=None
) -> dict[str, NestedQuality | str]:
    """Per outcome: the :class:`NestedQuality` over the methods, or why there is none."""
    options = options or NestedOptions()
    out: dict[str, NestedQuality | str] = {}
    for outcome in OUTCOMES:
        tasks = outcome_tasks(table, outcome, table.methods)
        if len(tasks) < MIN_NESTED_TASKS:
            out[outcome] = (
                f"{len(tasks)} task(s) with this outcome for every method; nested "
                f"leave-one-task-out needs at least {MIN_NESTED_TASKS}"
            )
            continue
        columns, _ = measure_columns(table, tasks, measures)
        if not columns:
            out[outcome] = "no measure is defined on every task"
            continue
        Y = np.stack([table.outcome(m, outcome, tasks) for m in table.methods], axis=1)
        weights = np.full(len(table.methods), 1.0 / len(table.methods))
        try:
            out[outcome], *_ = nested_quality(
                columns, class_counts(table, tasks), Y, weights, options=options
            )
        except DataError as exc:
            out[outcome] = str(exc)
    return out


def nested_sentence(q: NestedQuality, label: str) -> str:
    """Plain verdict: the procedure's nested error against the baseline's, with its p-value."""
    return (
        f"Choosing the predictor of {label} inside each leave-one-task-out fold (among "
        f"{q.n_candidates}; on all tasks: {q.best}) {q.verdict()}."
    )
