"""The typed run record (:class:`RunRecord`), its schema version and its JSON object.

The outcomes (dID, dDG, CF) are derived from the stored accuracies by
:func:`clipgap.record.outcomes.compute_outcomes`, written into the JSON for readers under the
keys of ``docs/records.md`` (the per-control changes under ``cf``, their mean under
``cf_mean``: schema 2's names), and checked against the accuracies when a record is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from clipgap.errors import DataError
from clipgap.record.outcomes import Outcomes, compute_outcomes
from clipgap.record.values import AlphaPoint, Difficulty, Scores

SCHEMA_VERSION = 2
STATUSES = ("complete", "failed")
# Keys that measure the machine rather than the science: they differ between two otherwise
# identical runs and are left out when records are compared.
VOLATILE_KEYS = ("seconds", "eval_seconds", "peak_memory_mb", "versions", "device")
# The record's JSON keys for each derived outcome (schema 2; the names in code differ for CF:
# ``Outcomes.cf`` is the mean, stored as ``cf_mean``; ``cf_per_control`` is stored as ``cf``).
OUTCOME_JSON_KEYS = {
    "delta_id": "delta_id",
    "delta_dg": "delta_dg",
    "delta_dg_per_domain": "delta_dg_per_domain",
    "cf_per_control": "cf",
    "cf": "cf_mean",
}
_TRAINING_KEYS = (
    "trainable_params",
    "best_epoch",
    "val_accuracy",
    "val_accuracy_start",
    "seconds",
    "eval_seconds",
    "peak_memory_mb",
    "versions",
    "device",
)


class RecordSchemaError(DataError):
    """A record written under another schema version (never read as if it were current)."""


@dataclass(frozen=True)
class CurvePoint:
    """The outcomes of a run at one interpolation weight ``alpha`` (0 = zero-shot, 1 =
    fine-tuned) and the validation accuracy there; ``stored`` is False for an end the run did
    not score, taken from its definition (see :meth:`RunRecord.curve`)."""

    alpha: float
    outcomes: Outcomes
    val_accuracy: float | None
    stored: bool


@dataclass(frozen=True)
class RunRecord:
    """One run: its identity, and for a complete run its difficulty, scores and training facts.

    ``config`` is the resolved run config (its hash is ``run_id``). ``shots`` is the number of
    training images per class (None = the full split). ``best_epoch`` >= 1 is the trained epoch
    chosen on validation accuracy; ``val_accuracy_start`` is the starting model's validation
    accuracy, kept for information. ``history`` has one entry per epoch (0 = the start).
    """

    run_id: str
    status: str
    task: str
    method: str
    seed: int
    preset: str
    model: str
    config: dict[str, Any]
    error: str | None = None
    shots: int | None = None
    difficulty: Difficulty | None = None
    zero_shot: Scores | None = None
    finetuned: Scores | None = None
    trainable_params: int | None = None
    best_epoch: int | None = None
    val_accuracy: float | None = None
    val_accuracy_start: float | None = None
    history: tuple[dict, ...] = ()
    interpolation: tuple[AlphaPoint, ...] = ()
    seconds: float | None = None
    eval_seconds: float | None = None
    peak_memory_mb: float | None = None
    versions: dict[str, str] = field(default_factory=dict)
    device: str | None = None
    schema: int = SCHEMA_VERSION

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @cached_property
    def outcomes(self) -> Outcomes | None:
        """The fine-tuned model's outcomes against the zero-shot model (None unless complete)."""
        if self.finetuned is None or self.zero_shot is None:
            return None
        return compute_outcomes(self.zero_shot, self.finetuned)

    def curve(self) -> tuple[CurvePoint, ...]:
        """The run's outcomes along alpha, sorted, from 0 to 1 (empty without interpolation).

        Each scored point is kept; an end the run did not score is added from its definition:
        alpha = 1 is the fine-tuned model (the run's outcomes and validation accuracy), alpha =
        0 the zero-shot model (no change: every outcome the run defines is 0, no validation
        accuracy).
        """
        if not self.interpolation or self.outcomes is None:
            return ()
        points = {
            p.alpha: CurvePoint(
                p.alpha, compute_outcomes(self.zero_shot, p.scores), p.val_accuracy, True
            )
            for p in self.interpolation
        }
        if 1.0 not in points:
            points[1.0] = CurvePoint(1.0, self.outcomes, self.val_accuracy, False)
        if 0.0 not in points:
            unchanged = compute_outcomes(self.zero_shot, self.zero_shot.within(self.finetuned))
            points[0.0] = CurvePoint(0.0, unchanged, None, False)
        return tuple(points[a] for a in sorted(points))

    # ---- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The record as the JSON object of ``docs/records.md`` (outcomes included)."""
        data = {
            "schema": self.schema,
            "run_id": self.run_id,
            "status": self.status,
            "error": self.error,
            "task": self.task,
            "method": self.method,
            "seed": self.seed,
            "preset": self.preset,
            "model": self.model,
            "config": self.config,
            "shots": self.shots,
        }
        if not self.complete:
            return data
        data.update(
            difficulty=self.difficulty.to_dict(),
            zero_shot=self.zero_shot.to_dict(),
            finetuned=self.finetuned.to_dict(),
            interpolation=[p.to_dict() for p in self.interpolation],
        )
        data.update({key: getattr(self.outcomes, name) for name, key in OUTCOME_JSON_KEYS.items()})
        data.update({key: getattr(self, key) for key in _TRAINING_KEYS})
        data["history"] = list(self.history)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    def comparable(self) -> dict:
        """The JSON object without the keys that measure the machine, at the top level and in
        each epoch of ``history`` (determinism checks)."""
        data = {k: v for k, v in self.to_dict().items() if k not in VOLATILE_KEYS}
        if "history" in data:
            data["history"] = [
                {k: v for k, v in epoch.items() if k not in VOLATILE_KEYS}
                for epoch in data["history"]
            ]
        return data

    def with_updates(self, **changes) -> RunRecord:
        return replace(self, **changes)
