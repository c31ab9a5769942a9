"""The outcomes of fine-tuning, computed by one function (:func:`compute_outcomes`) from the
zero-shot scores and the scores of a model after fine-tuning (the fine-tuned model, or the model
interpolated at some alpha); and the one spelling of their names and display labels.

- ``delta_id`` (dID): after - zero-shot top-1 on the task's test split, in [-1, 1].
- ``delta_dg`` (dDG): the mean over shift domains of the same, ``delta_dg_per_domain`` each.
- ``cf`` (CF): the mean over control tasks of the same (negative = forgetting),
  ``cf_per_control`` each.
- ``gain_norm`` (dID/(1-zs)): the follow-up's normalised gain, dID / (1 - zero-shot ID), the
  share of the zero-shot error that fine-tuning removed.

A mean over no domain (control task) and the normalised gain of a task the zero-shot model
already solves are None: undefined, never 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from clipgap.errors import UnknownNameError
from clipgap.record.values import Scores

# The paper's three outcomes, the ones the report analyses and claims are about.
OUTCOMES = ("delta_id", "delta_dg", "cf")
NORMALISED_GAIN = "gain_norm"
# What the predictors learn: the paper's outcomes and the normalised gain.
PREDICTED_OUTCOMES = (*OUTCOMES, NORMALISED_GAIN)
# How every output (report, predictions, CLI tables) labels them.
OUTCOME_LABELS = {"delta_id": "dID", "delta_dg": "dDG", "cf": "CF", "gain_norm": "dID/(1-zs)"}


def mean_or_none(values: Iterable[float]) -> float | None:
    """The arithmetic mean, or None for no values."""
    values = list(values)
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Outcomes:
    """The outcomes of one model against the zero-shot model (see the module docstring)."""

    delta_id: float
    delta_dg: float | None = None
    cf: float | None = None
    gain_norm: float | None = None
    delta_dg_per_domain: dict[str, float] = field(default_factory=dict)
    cf_per_control: dict[str, float] = field(default_factory=dict)

    def value(self, name: str) -> float | None:
        """The outcome called ``name`` (one of :data:`PREDICTED_OUTCOMES`); None where undefined."""
        if name not in PREDICTED_OUTCOMES:
            raise UnknownNameError(
                f"unknown outcome {name!r}; choose from {', '.join(PREDICTED_OUTCOMES)}"
            )
        return getattr(self, name)


def _changes(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in after if k in before}


def compute_outcomes(zero_shot: Scores, after: Scores) -> Outcomes:
    """The outcomes of a model scored ``after`` against the ``zero_shot`` scores, over the
    domains and control tasks both were scored on."""
    delta_id = after.id - zero_shot.id
    per_domain = _changes(after.dg, zero_shot.dg)
    per_control = _changes(after.control, zero_shot.control)
    error = 1.0 - zero_shot.id
    return Outcomes(
        delta_id=delta_id,
        delta_dg=mean_or_none(per_domain.values()),
        cf=mean_or_none(per_control.values()),
        gain_norm=None if error <= 0 else delta_id / error,
        delta_dg_per_domain=per_domain,
        cf_per_control=per_control,
    )
