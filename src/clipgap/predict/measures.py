"""Which difficulty measure predicts which fine-tuning outcome, on one study.

For every measure x outcome x method (and the five paper methods pooled per task): the
leave-one-task-out (LOTO) error of a least-squares line of the outcome on the measure, R^2,
Spearman rho, Kendall tau and weighted Kendall tau across tasks (per-task values are seed means).
Measures are then ranked per outcome by their LOTO error averaged over methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from clipgap.predict.honest import NestedOptions, NestedQuality
from clipgap.predict.ranking import nested_by_outcome, nested_sentence
from clipgap.predict.table import POOLED, StudyTable, study_table
from clipgap.record import DIFFICULTY_KEYS, OUTCOME_LABELS, PREDICTED_OUTCOMES, RunRecord
from clipgap.stats import Association, associate

MIN_TASKS = 4  # a line fitted on n - 1 >= 3 tasks, so LOTO residuals mean something


@dataclass(frozen=True)
class MeasureScore:
    """How well ``measure`` predicts ``outcome`` for ``method`` (or :data:`POOLED`)."""

    measure: str
    outcome: str
    method: str
    stats: Association


@dataclass(frozen=True)
class MeasureRank:
    """One measure's place for one outcome: LOTO mean absolute error averaged over the
    ``n_methods`` methods (not the pooled arm), against the difficulty-free baseline's."""

    outcome: str
    rank: int
    measure: str
    loto_mae: float
    baseline_mae: float
    n_methods: int
    n_tasks: int


@dataclass(frozen=True)
class MeasureComparison:
    """The measure comparison of one study (one model, one preset, full-data runs)."""

    model: str
    preset: str
    split: str
    n_tasks: int
    methods: tuple[str, ...]
    scores: tuple[MeasureScore, ...]
    unavailable: tuple[tuple[str, str], ...]  # (measure, why)
    notes: tuple[str, ...]
    # outcome -> the nested LOTO verdict (or why there is none): what the ranking claims
    nested: dict[str, NestedQuality | str] = field(default_factory=dict)

    def ranking(self, outcome: str) -> tuple[MeasureRank, ...]:
        """Measures ordered by mean LOTO error over methods (best first) for ``outcome``."""
        rows = []
        for measure in DIFFICULTY_KEYS:
            mine = [
                s.stats
                for s in self.scores
                if s.measure == measure and s.outcome == outcome and s.method != POOLED
            ]
            if mine:
                rows.append(
                    (
                        float(np.mean([a.loto_mae for a in mine])),
                        float(np.mean([a.baseline_mae for a in mine])),
                        measure,
                        len(mine),
                        max(a.n for a in mine),
                    )
                )
        rows.sort(key=lambda row: row[0])
        return tuple(
            MeasureRank(outcome, i + 1, measure, mae, base, n_methods, n_tasks)
            for i, (mae, base, measure, n_methods, n_tasks) in enumerate(rows)
        )

    def outcomes(self) -> tuple[str, ...]:
        """Outcomes with at least one score."""
        present = {s.outcome for s in self.scores}
        return tuple(o for o in PREDICTED_OUTCOMES if o in present)

    def summary(self, outcome: str = "delta_id") -> str:
        """A plain sentence: which measure predicted ``outcome`` best, and by how much."""
        return best_sentence(self, outcome)


def compare_measures(
    records: list[RunRecord],
    *,
    preset: str | None = None,
    min_tasks: int = MIN_TASKS,
    options: NestedOptions | None = None,
) -> MeasureComparison:
    """Score every difficulty measure against every outcome, per method and pooled.

    A measure that is None on any task of the study is unavailable (listed with the tasks);
    a (method, outcome) with fewer than ``min_tasks`` tasks is skipped (listed in ``notes``).
    The per-measure scores describe; the verdict is ``nested`` (``options``: its settings).
    """
    table = study_table(records, preset=preset)
    return comparison_from_table(table, min_tasks=min_tasks, options=options)


def comparison_from_table(
    table: StudyTable, *, min_tasks: int = MIN_TASKS, options: NestedOptions | None = None
) -> MeasureComparison:
    unavailable = []
    for measure in DIFFICULTY_KEYS:
        missing = table.missing_measure(measure, table.tasks)
        if missing:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            unavailable.append((measure, f"not measured on {len(missing)} task(s): {shown}"))
    available = [m for m in DIFFICULTY_KEYS if m not in dict(unavailable)]
    arms = [(m, table.tasks_of(m)) for m in table.methods] + [(POOLED, table.pooled_tasks())]
    scores, notes = [], []
    for arm, tasks in arms:
        for outcome in PREDICTED_OUTCOMES:
            y = table.outcome(arm, outcome, tasks)
            if y is None or len(tasks) < min_tasks:
                why = "undefined on some task" if y is None else f"only {len(tasks)} task(s)"
                notes.append(f"{arm} / {OUTCOME_LABELS[outcome]}: skipped ({why})")
                continue
            for measure in available:
                x = table.measure(measure, tasks)
                scores.append(MeasureScore(measure, outcome, arm, associate(x, y)))
    return MeasureComparison(
        model=table.model,
        preset=table.preset,
        split=table.split,
        n_tasks=len(table.tasks),
        methods=table.methods,
        scores=tuple(scores),
        unavailable=tuple(unavailable),
        notes=tuple(notes),
        nested=nested_by_outcome(table, options=options),
    )


def _num(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.3f}"


def percent_lower(value: float, reference: float) -> str:
    """How much lower ``value`` is than ``reference``, in percent of ``reference`` (one decimal
    under 10%, "—" without a positive reference): how a LOTO error is set against another."""
    if not reference > 0:
        return "—"
    percent = 100 * (reference - value) / reference
    return f"{percent:.1f}%" if abs(percent) < 10 else f"{percent:.0f}%"


def best_sentence(comparison: MeasureComparison, outcome: str) -> str:
    label = OUTCOME_LABELS[outcome]
    ranking = comparison.ranking(outcome)
    where = (
        f"On this study (model {comparison.model}, preset {comparison.preset}, "
        f"{comparison.n_tasks} tasks)"
    )
    if not ranking:
        return f"{where}, no measure could be scored against {label}."
    best = ranking[0]
    text = (
        f"{where}, {best.measure} predicted {label} best: leave-one-task-out mean absolute error "
        f"{_num(best.loto_mae)} (mean over {best.n_methods} methods)"
    )
    if len(ranking) > 1:
        second = ranking[1]
        text += (
            f", {percent_lower(best.loto_mae, second.loto_mae)} lower than the runner-up "
            f"{second.measure} ({_num(second.loto_mae)})"
        )
    text += " (per measure, not nested: a description)."
    nested = comparison.nested.get(outcome)
    if isinstance(nested, str):
        text += f" Nested leave-one-task-out not computed: {nested}."
    elif nested is not None:
        text += " " + nested_sentence(nested, label)
    if comparison.unavailable:
        text += " Not scored (not measured on every task): " + ", ".join(
            m for m, _ in comparison.unavailable
        )
        text += "."
    return text
