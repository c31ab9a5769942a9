"""The typed result of a recommendation: per-method predictions with intervals, the ranking,
the nested leave-one-task-out quality on the study and the warnings."""

from __future__ import annotations

from dataclasses import dataclass, field

from clipgap.predict.honest import NestedQuality
from clipgap.record import OUTCOME_LABELS


@dataclass(frozen=True)
class OutcomePrediction:
    """Predicted ``outcome`` at the new task's measure, with its ``level`` prediction interval
    [low, high] (NaN when it cannot be estimated), from a predictor over ``n_tasks`` tasks;
    ``slope``/``intercept`` of a line in the measure's units (slope NaN for ridge)."""

    outcome: str
    value: float
    low: float
    high: float
    slope: float
    intercept: float
    n_tasks: int


@dataclass(frozen=True)
class MethodPrediction:
    """One method's predicted outcomes and its objective ``score`` (higher = better);
    ``baseline_score``: the objective of its mean outcomes over the study's tasks (no difficulty).
    """

    method: str
    score: float
    outcomes: tuple[OutcomePrediction, ...]
    baseline_score: float = float("nan")

    def get(self, outcome: str) -> OutcomePrediction | None:
        return next((p for p in self.outcomes if p.outcome == outcome), None)


@dataclass(frozen=True)
class Recommendation:
    """The recommendation for one new task; ``predictions`` are in ranking order (best first)."""

    model: str
    preset: str
    split: str
    measure: str  # the predictor: a measure, or ridge(m1+m2)
    measure_value: float  # the new task's value of its (first) measure
    measure_range: tuple[float, float]
    measure_chosen: str  # "nested" (lowest LOTO error, judged by nested LOTO) or "given"
    objective: dict[str, float]
    level: float
    tasks: tuple[str, ...]
    predictions: tuple[MethodPrediction, ...]
    quality: NestedQuality
    candidates: tuple[tuple[str, float], ...] = ()  # (predictor, plain weighted LOTO error)
    warnings: tuple[str, ...] = field(default=())
    n_images: int | None = None  # images the new task's difficulty was measured on
    outcome_mae: dict[str, tuple[float, float]] = field(default_factory=dict)  # nested, baseline
    values: dict[str, float] = field(default_factory=dict)  # the predictor's measures, new task

    @property
    def ranking(self) -> tuple[str, ...]:
        return tuple(p.method for p in self.predictions)

    @property
    def best(self) -> str:
        return self.predictions[0].method

    @property
    def baseline_best(self) -> str:
        """The method the difficulty-free baseline picks (best mean objective over the study)."""
        return max(self.predictions, key=lambda p: p.baseline_score).method

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "preset": self.preset,
            "split": self.split,
            "n_images": self.n_images,
            "measure": self.measure,
            "measure_value": self.measure_value,
            "measure_range": list(self.measure_range),
            "measure_chosen": self.measure_chosen,
            "measure_values": dict(self.values),
            "objective": dict(self.objective),
            "interval_level": self.level,
            "interval_method": self.quality.interval_method,
            "study_tasks": list(self.tasks),
            "ranking": list(self.ranking),
            "baseline_best": self.baseline_best,
            "predictions": [
                {
                    "method": p.method,
                    "score": p.score,
                    "baseline_score": p.baseline_score,
                    **{
                        OUTCOME_LABELS[o.outcome]: {"value": o.value, "low": o.low, "high": o.high}
                        for o in p.outcomes
                    },
                }
                for p in self.predictions
            ],
            "quality": {
                **self.quality.to_dict(),
                "outcome_mae": {
                    OUTCOME_LABELS[o]: {"nested": a, "baseline": b}
                    for o, (a, b) in self.outcome_mae.items()
                },
            },
            "verdict": f"The nested procedure {self.quality.verdict()}.",
            "candidates": dict(self.candidates),
            "warnings": list(self.warnings),
        }
