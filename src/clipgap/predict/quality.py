"""How good a recommendation from one measure would have been on the study's own tasks.

Leave-one-task-out (LOTO): hold out each task in turn, fit every method's lines on the other
tasks, predict the held-out task's outcomes and rank the methods by the objective; compare with
what fine-tuning actually gave there. The baseline ignores difficulty: each method's mean outcome
over the other tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipgap.predict.table import StudyTable
from clipgap.record import OUTCOME_LABELS
from clipgap.stats import loto_predictions


@dataclass(frozen=True)
class LotoQuality:
    """LOTO quality of predictions from ``measure`` over ``n_tasks`` held-out tasks.

    ``mae`` / ``baseline_mae``: per outcome, mean |predicted - actual| over methods and held-out
    tasks. ``weighted_mae``: sum over outcomes of |objective weight| * mae (what picks the
    measure). ``hits``: held-out tasks where the predicted best method was truly best (ties
    count). ``regret``: mean over held-out tasks of the true objective of the truly best method
    minus that of the predicted best (>= 0; 0 = always right). ``baseline_*``: the same for the
    difficulty-free baseline.
    """

    measure: str
    n_tasks: int
    mae: dict[str, float]
    baseline_mae: dict[str, float]
    weighted_mae: float
    baseline_weighted_mae: float
    hits: int
    baseline_hits: int
    regret: float
    baseline_regret: float

    @property
    def beats_baseline(self) -> bool:
        """Lower objective-weighted error than the baseline, and no more regret."""
        return (
            self.weighted_mae < self.baseline_weighted_mae and self.regret <= self.baseline_regret
        )

    def sentence(self) -> str:
        """A plain verdict against the difficulty-free baseline."""
        err = (
            f"objective-weighted error {self.weighted_mae:.3f} vs {self.baseline_weighted_mae:.3f}"
        )
        picks = (
            f"best method picked on {self.hits}/{self.n_tasks} held-out tasks vs "
            f"{self.baseline_hits}/{self.n_tasks}, mean regret {self.regret:.3f} vs "
            f"{self.baseline_regret:.3f}"
        )
        if self.beats_baseline:
            return (
                f"Predictions from {self.measure} beat the baseline that ignores difficulty on "
                f"this study ({err}; {picks})."
            )
        return (
            f"Predictions from {self.measure} do NOT beat the baseline that ignores difficulty "
            f"on this study ({err}; {picks}): prefer each method's mean outcome over the study's "
            f"tasks."
        )

    def to_dict(self) -> dict:
        return {
            "measure": self.measure,
            "n_tasks": self.n_tasks,
            "mae": {OUTCOME_LABELS[o]: v for o, v in self.mae.items()},
            "baseline_mae": {OUTCOME_LABELS[o]: v for o, v in self.baseline_mae.items()},
            "weighted_mae": self.weighted_mae,
            "baseline_weighted_mae": self.baseline_weighted_mae,
            "hits": self.hits,
            "baseline_hits": self.baseline_hits,
            "regret": self.regret,
            "baseline_regret": self.baseline_regret,
            "beats_baseline": self.beats_baseline,
        }


def _picks(scores: np.ndarray, truth: np.ndarray) -> tuple[int, float]:
    """Hits and total regret of picking argmax(scores) per row (rows = tasks, cols = methods)."""
    chosen = truth[np.arange(len(truth)), np.argmax(scores, axis=1)]
    best = truth.max(axis=1)
    return int(np.sum(chosen >= best)), float(np.sum(best - chosen))


def loto_quality(
    table: StudyTable,
    measure: str,
    *,
    tasks: tuple[str, ...],
    weights: dict[str, float],
) -> LotoQuality:
    """LOTO quality of ``measure`` on ``tasks`` (every method of ``table`` has all of them and
    every outcome in ``weights``, keyed by outcome name, is defined on them)."""
    x = table.measure(measure, tasks)
    n, k = len(tasks), len(table.methods)
    pred_score, base_score, true_score = np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, k))
    mae, base_mae = {}, {}
    for outcome, weight in weights.items():
        errors, base_errors = [], []
        for j, method in enumerate(table.methods):
            y = table.outcome(method, outcome, tasks)
            pred, base = loto_predictions(x, y)
            errors.append(np.abs(pred - y))
            base_errors.append(np.abs(base - y))
            pred_score[:, j] += weight * pred
            base_score[:, j] += weight * base
            true_score[:, j] += weight * y
        mae[outcome] = float(np.mean(errors))
        base_mae[outcome] = float(np.mean(base_errors))
    hits, regret = _picks(pred_score, true_score)
    base_hits, base_regret = _picks(base_score, true_score)
    return LotoQuality(
        measure=measure,
        n_tasks=n,
        mae=mae,
        baseline_mae=base_mae,
        weighted_mae=sum(abs(weights[o]) * mae[o] for o in weights),
        baseline_weighted_mae=sum(abs(weights[o]) * base_mae[o] for o in weights),
        hits=hits,
        baseline_hits=base_hits,
        regret=regret / n,
        baseline_regret=base_regret / n,
    )
