"""Recommend a PEFT method for a new task from its difficulty and a study's records.

Per method and outcome (dID, dDG, CF), a least-squares line of the outcome on one difficulty
measure over the study's tasks predicts the new task's outcome, with a 90% prediction interval;
methods are ranked by a weighted objective. The measure is the one with the lowest
leave-one-task-out error on the study (or the caller's), and the same LOTO procedure says how good
such predictions were there, against a baseline that ignores difficulty.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from clipgap.errors import DataError, ModelError
from clipgap.predict.objective import DEFAULT_OBJECTIVE, OBJECTIVE_KEYS, check_objective
from clipgap.predict.quality import loto_quality
from clipgap.predict.result import MethodPrediction, OutcomePrediction, Recommendation
from clipgap.predict.table import StudyTable, check_measure, study_table
from clipgap.record import DIFFICULTY_KEYS, OUTCOME_LABELS, Difficulty, RunRecord
from clipgap.stats import LEVEL, fit_line, prediction_interval

log = logging.getLogger(__name__)

MIN_TASKS = 4  # per method: a line on n - 1 >= 3 tasks under LOTO, and 2 residual dof
FAR_OUTSIDE = 0.25  # warn when the new task's measure lies beyond the range by > 25% of its span


def _value(difficulty: Difficulty | Mapping, measure: str) -> float | None:
    value = (
        difficulty.get(measure) if isinstance(difficulty, Mapping) else difficulty.value(measure)
    )
    return None if value is None or value != value else float(value)


def study_tasks(table: StudyTable, min_tasks: int = MIN_TASKS) -> tuple[str, ...]:
    """The tasks every method ran on; refuses a study with fewer than ``min_tasks``."""
    tasks = table.common_tasks()
    if len(tasks) < min_tasks:
        counts = ", ".join(f"{m} {len(table.tasks_of(m))}" for m in table.methods)
        raise DataError(
            f"the study has {len(tasks)} task(s) on which every method ran ({counts}); a "
            f"recommendation needs at least {min_tasks} tasks per method"
        )
    return tasks


def _outcomes(table, tasks, weights, warnings) -> dict[str, float]:
    """Outcome -> weight for the non-zero objective keys defined on every (method, task)."""
    used = {}
    for key, weight in weights.items():
        outcome = OBJECTIVE_KEYS[key]
        if weight == 0:
            continue
        if any(table.outcome(m, outcome, tasks) is None for m in table.methods):
            warnings.append(
                f"{OUTCOME_LABELS[outcome]} is not measured on every study task for every method "
                f"(e.g. no DG domain or control task); left out of the objective"
            )
            continue
        used[outcome] = weight
    if not used:
        raise DataError("no outcome of the objective is measured in the study; change --objective")
    return used


def _candidates(table, tasks, difficulty, measure, warnings) -> list[str]:
    in_study = [m for m in DIFFICULTY_KEYS if table.measure(m, tasks) is not None]
    if measure is not None:
        check_measure(measure)
        if measure not in in_study:
            raise DataError(f"measure {measure} is not recorded on every study task")
        if _value(difficulty, measure) is None:
            raise DataError(f"measure {measure} is undefined on the new task")
        return [measure]
    usable = [m for m in in_study if _value(difficulty, m) is not None]
    if not usable:
        raise DataError("no difficulty measure is defined on both the study's tasks and the task")
    left_out = [m for m in DIFFICULTY_KEYS if m not in usable]
    if left_out:
        warnings.append(
            f"not considered (not measured on every study task or on the new task): "
            f"{', '.join(left_out)}"
        )
    return usable


def _predict(table, tasks, measure, x0, used, level) -> list[MethodPrediction]:
    x = table.measure(measure, tasks)
    out = []
    for method in table.methods:
        preds, baseline = [], 0.0
        for outcome in used:
            y = table.outcome(method, outcome, tasks)
            baseline += used[outcome] * float(y.mean())
            line = fit_line(x, y)
            low, high = prediction_interval(line, x0, level=level)
            preds.append(
                OutcomePrediction(
                    outcome, line.predict(x0), low, high, line.slope, line.intercept, line.n
                )
            )
        score = sum(used[p.outcome] * p.value for p in preds)
        out.append(MethodPrediction(method, score, tuple(preds), baseline))
    return sorted(out, key=lambda p: -p.score)  # stable: ties keep the table's method order


def _range_warning(measure: str, x0: float, lo: float, hi: float) -> str | None:
    span = hi - lo
    if lo - FAR_OUTSIDE * span <= x0 <= hi + FAR_OUTSIDE * span:
        return None
    return (
        f"the new task's {measure} = {x0:.4g} lies outside the studied range [{lo:.4g}, {hi:.4g}] "
        f"by more than {FAR_OUTSIDE:.0%} of its span: the predictions extrapolate, trust them less"
    )


def recommend_from_difficulty(
    difficulty: Difficulty | Mapping,
    records: list[RunRecord],
    *,
    objective: Mapping | None = None,
    measure: str | None = None,
    preset: str | None = None,
    level: float = LEVEL,
    min_tasks: int = MIN_TASKS,
) -> Recommendation:
    """Recommend a method for a task whose difficulty is already measured.

    ``difficulty``: a :class:`Difficulty` (its split must be the study's) or a mapping of
    measure name to value. ``records``: the study's run records (complete, one model; ``preset``
    picks one preset when they hold several). ``objective``: weights of ``id``, ``dg``, ``cf``
    (missing = 0; default all 1). ``measure``: the difficulty measure to predict from (default:
    the one with the lowest objective-weighted LOTO error on the study).
    """
    weights = check_objective(DEFAULT_OBJECTIVE if objective is None else objective)
    table = study_table(records, preset=preset)
    if isinstance(difficulty, Difficulty) and difficulty.split != table.split:
        raise DataError(
            f"the study measured difficulty on the {table.split} split, the new task's is on "
            f"the {difficulty.split} split; measure the same split"
        )
    tasks = study_tasks(table, min_tasks)
    warnings: list[str] = []
    used = _outcomes(table, tasks, weights, warnings)
    qualities = {
        m: loto_quality(table, m, tasks=tasks, weights=used)
        for m in _candidates(table, tasks, difficulty, measure, warnings)
    }
    chosen = min(qualities, key=lambda m: qualities[m].weighted_mae)  # ties: DIFFICULTY_KEYS order
    if measure is None:
        warnings.append(
            f"{chosen} was chosen among {len(qualities)} measures on these same {len(tasks)} "
            f"tasks, so its leave-one-task-out numbers are somewhat optimistic"
        )
    x0 = _value(difficulty, chosen)
    x = table.measure(chosen, tasks)
    lo, hi = float(x.min()), float(x.max())
    far = _range_warning(chosen, x0, lo, hi)
    if far:
        log.info(far)
        warnings.append(far)
    return Recommendation(
        model=table.model,
        preset=table.preset,
        split=table.split,
        measure=chosen,
        measure_value=x0,
        measure_range=(lo, hi),
        measure_chosen="given" if measure else "loto",
        objective=weights,
        level=level,
        tasks=tasks,
        predictions=tuple(_predict(table, tasks, chosen, x0, used, level)),
        quality=qualities[chosen],
        candidates=tuple(
            sorted(((m, q.weighted_mae) for m, q in qualities.items()), key=lambda c: c[1])
        ),
        warnings=tuple(warnings),
        n_images=difficulty.n_images if isinstance(difficulty, Difficulty) else None,
    )


def measured_portion(task, place: dict):
    """The images of ``task`` (the study's difficulty split) that the study measured difficulty
    on: the training portion (train split minus the trainer's validation hold-out, as
    ``clipgap.training.data.split_validation`` draws it) or the test split under its cap."""
    import numpy as np

    from clipgap.training.data import split_validation

    if place.get("split") == "train" and place.get("val_fraction", 0) > 0:
        fit, _ = split_validation(
            task, place["val_fraction"], max_images=place.get("val_max", 5000),
            seed=place.get("val_seed", 0),
        )  # fmt: skip
        return fit
    cap = place.get("max_test_images")
    if place.get("split") == "test" and cap is not None and len(task) > cap:
        keep = np.sort(np.random.default_rng(0).permutation(len(task))[:cap])
        return task.subset(keep, split="test")
    return task


def recommend(
    backbone,
    task,
    records: list[RunRecord],
    *,
    objective: Mapping | None = None,
    measure: str | None = None,
    preset: str | None = None,
    batch_size: int = 256,
    cache: bool = True,
    progress: bool = False,
) -> Recommendation:
    """Measure ``task``'s difficulty under ``backbone`` (one pass of zero-shot embeddings, cached)
    and recommend a method from ``records`` (see :func:`recommend_from_difficulty`).

    The backbone must be the study's model (``backbone.spec`` equal to the records' ``model``)
    and ``task`` the split the study measured difficulty on (``train`` for studies); difficulty
    is measured on the same images as the study's (:func:`measured_portion`).
    """
    from clipgap.difficulty import measure_difficulty

    table = study_table(records, preset=preset)
    if backbone.spec != table.model:
        raise ModelError(
            f"model {backbone.spec!r} differs from the study's {table.model!r}; predictions are "
            f"per model: use the study's model or a study of this one"
        )
    if not task.class_names or any(not str(c).strip() for c in task.class_names):
        raise DataError(f"task {task.name}: its class names are empty")
    study_tasks(table)  # refuse a study with too few tasks before measuring anything
    if task.split != table.split:
        raise DataError(
            f"task {task.name} is its {task.split} split; the study measured difficulty on "
            f"the {table.split} split: load that split"
        )
    images = measured_portion(task, table.place)
    measured = measure_difficulty(backbone, images, batch_size=batch_size, cache=cache,
                                  progress=progress)  # fmt: skip
    known = {*DIFFICULTY_KEYS, "n_images", "n_classes"}
    difficulty = Difficulty.from_measures(
        {k: v for k, v in measured.items() if k in known}, split=task.split
    )
    return recommend_from_difficulty(
        difficulty, records, objective=objective, measure=measure, preset=table.preset
    )
