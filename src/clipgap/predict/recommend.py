"""Recommend a PEFT method for a new task from its difficulty and a study's records.

Per method and outcome (dID, dDG, CF), a predictor over the study's tasks (a least-squares line
on one difficulty measure, or ridge over two or three) predicts the new task's outcome with a 90%
interval; methods are ranked by a weighted objective. The predictor is the one with the lowest
leave-one-task-out error on the study (or the caller's measure); how good that whole choice is
comes from nested LOTO (the choice redone inside each fold) against the difficulty-free
baselines, with a permutation p-value (:mod:`clipgap.predict.honest`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from clipgap.errors import DataError, ModelError
from clipgap.predict.forecast import outcome_predictions, outside_range
from clipgap.predict.honest import NestedOptions, nested_quality
from clipgap.predict.objective import DEFAULT_OBJECTIVE, OBJECTIVE_KEYS, check_objective
from clipgap.predict.ranking import class_counts, measure_columns
from clipgap.predict.result import MethodPrediction, Recommendation
from clipgap.predict.table import StudyTable, check_measure, study_table
from clipgap.record import DIFFICULTY_KEYS, OUTCOME_LABELS, Difficulty, RunRecord
from clipgap.stats import NAN
from clipgap.stats.nested import MIN_NESTED_TASKS

log = logging.getLogger(__name__)

MIN_TASKS = MIN_NESTED_TASKS  # nested LOTO: one task held out, inner lines on n - 2 >= 3
FAR_OUTSIDE = 0.0  # warn when the new task's measure lies outside the studied range at all


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
            f"recommendation needs at least {min_tasks} tasks per method (nested "
            f"leave-one-task-out holds one out and fits lines on n - 2 >= 3 inside)"
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


def _candidates(table, tasks, difficulty, measure, measures, warnings) -> dict:
    """measure -> its values on ``tasks``, for the measures the procedure may choose among."""
    if measure is not None:
        check_measure(measure)
        if table.measure(measure, tasks) is None:
            raise DataError(f"measure {measure} is not recorded on every study task")
        if _value(difficulty, measure) is None:
            raise DataError(f"measure {measure} is undefined on the new task")
        return {measure: table.measure(measure, tasks)}
    columns, _ = measure_columns(table, tasks, measures)
    usable = {m: x for m, x in columns.items() if _value(difficulty, m) is not None}
    if not usable:
        raise DataError("no difficulty measure is defined on both the study's tasks and the task")
    left_out = [m for m in (measures or DIFFICULTY_KEYS) if m not in usable]
    if left_out:
        warnings.append(
            f"not considered (not measured on every study task or on the new task): "
            f"{', '.join(left_out)}"
        )
    return usable


def _targets(table, tasks, used):
    """Outcome matrix Y (tasks x (method, outcome)), the targets, error weights and objective."""
    targets = [(m, o) for m in table.methods for o in used]
    Y = np.stack([table.outcome(m, o, tasks) for m, o in targets], axis=1)
    k = len(table.methods)
    weights = np.array([abs(used[o]) / k for _, o in targets])
    method = np.array([table.methods.index(m) for m, _ in targets])
    signed = np.array([used[o] for _, o in targets])
    return Y, targets, weights, (method, signed)


def _per_outcome(run, base_run, Y, targets, used) -> dict[str, tuple[float, float]]:
    """outcome -> (nested MAE, baseline nested MAE), mean over methods and held-out tasks."""
    out = {}
    for outcome in used:
        cols = [t for t, (_, o) in enumerate(targets) if o == outcome]
        out[outcome] = (
            float(np.abs(run.predictions[:, cols] - Y[:, cols]).mean()),
            float(np.abs(base_run.predictions[:, cols] - Y[:, cols]).mean()),
        )
    return out


def _method_predictions(table, tasks, used, per_method) -> list[MethodPrediction]:
    """Each method's predictions, objective score and the baseline's (its mean outcomes)."""
    return [
        MethodPrediction(
            m,
            sum(used[p.outcome] * p.value for p in per_method[m]),
            tuple(per_method[m]),
            sum(used[o] * float(table.outcome(m, o, tasks).mean()) for o in used),
        )
        for m in table.methods
    ]


def _small_study_warning(n: int, quality) -> str | None:
    """When OLS-type intervals under-covered and the study is too small for a finite conformal
    interval: the recommendation then has no interval."""
    need = math.ceil(quality.interval / (1 - quality.interval) - 1e-9)
    if n >= need or quality.interval_method == "ols":
        return None
    return (
        f"the study has {n} tasks, too few for the procedure's {quality.interval:.0%} intervals: "
        f"OLS-type ones covered {quality.coverage['ols']:.0%} under LOTO and a conformal one "
        f"that includes the choice of predictor needs {need} tasks; no interval is given"
    )


def recommend_from_difficulty(
    difficulty: Difficulty | Mapping,
    records: list[RunRecord],
    *,
    objective: Mapping | None = None,
    measure: str | None = None,
    measures=None,
    preset: str | None = None,
    options: NestedOptions | None = None,
    min_tasks: int = MIN_TASKS,
) -> Recommendation:
    """Recommend a method for a task whose difficulty is already measured.

    ``difficulty``: a :class:`Difficulty` (its split must be the study's) or a mapping of
    measure name to value. ``records``: the study's run records (complete, one model; ``preset``
    picks one preset when they hold several). ``objective``: weights of ``id``, ``dg``, ``cf``
    (missing = 0; default all 1). ``measure``: predict from this measure only; otherwise the
    predictor (a measure, or ridge over a few of ``measures``, default all) is chosen by nested
    leave-one-task-out, which also says how good the whole procedure was (``options``).
    """
    options = options or NestedOptions()
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
    columns = _candidates(table, tasks, difficulty, measure, measures, warnings)
    Y, targets, errw, obj = _targets(table, tasks, used)
    quality, run, base_run = nested_quality(
        columns, class_counts(table, tasks), Y, errw, options=options, objective=obj
    )
    values = {m: _value(difficulty, m) for m in columns}
    warnings += outside_range(run, values, FAR_OUTSIDE)
    warnings += [w for w in [_small_study_warning(len(tasks), quality)] if w]
    for line in warnings:
        log.info(line)
    per_method = outcome_predictions(run, quality, Y, values, targets)
    predictions = _method_predictions(table, tasks, used, per_method)
    first = run.cands[run.best].features[:1]  # the first measure of the chosen predictor
    x = run.columns[first[0]] if first else np.array([NAN])
    return Recommendation(
        model=table.model,
        preset=table.preset,
        split=table.split,
        measure=quality.best,
        measure_value=values[first[0]] if first else NAN,
        measure_range=(float(x.min()), float(x.max())),
        measure_chosen="given" if measure else "nested",
        objective=weights,
        level=options.interval,
        tasks=tasks,
        predictions=tuple(sorted(predictions, key=lambda p: -p.score)),
        quality=quality,
        candidates=tuple(sorted(quality.loto.items(), key=lambda c: c[1])),
        warnings=tuple(warnings),
        n_images=difficulty.n_images if isinstance(difficulty, Difficulty) else None,
        outcome_mae=_per_outcome(run, base_run, Y, targets, used),
        values={f: values[f] for f in run.cands[run.best].features},
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
    measures=None,
    preset: str | None = None,
    options: NestedOptions | None = None,
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
        difficulty, records, objective=objective, measure=measure, measures=measures,
        preset=table.preset, options=options,
    )  # fmt: skip
