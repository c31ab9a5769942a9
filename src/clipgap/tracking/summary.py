"""The final scalars a tracker logs for a run record."""

from __future__ import annotations

import math

from clipgap.record import DIFFICULTY_KEYS

__all__ = ["record_summary"]


def record_summary(record) -> dict[str, float]:
    """The final scalars of a complete run record, by name.

    ``finetuned/id``, ``finetuned/dg/D``, ``finetuned/control/C`` and the same under
    ``zero_shot/``: top-1 accuracies in [0, 1] on test splits. ``delta/id`` (dID) and
    ``delta/dg`` (dDG, the mean over shift domains; per domain ``delta/dg/D``) in [-1, 1]:
    fine-tuned minus zero-shot. ``cf/mean`` and ``cf/C``: the same on control tasks (negative =
    forgetting). ``difficulty/KEY``: the task's difficulty measures under the original model.
    ``best_epoch``, ``val_accuracy``, ``trainable_params``. Undefined values are left out.
    """
    out: dict[str, float | None] = {}
    for name, scores in (("finetuned", record.finetuned), ("zero_shot", record.zero_shot)):
        if scores is None:
            continue
        out[f"{name}/id"] = scores.id
        out.update({f"{name}/dg/{d}": v for d, v in scores.dg.items()})
        out.update({f"{name}/control/{c}": v for c, v in scores.control.items()})
    outcomes = record.outcomes
    if outcomes is not None:
        out["delta/id"] = outcomes.delta_id
        out["delta/dg"] = outcomes.delta_dg
        out.update({f"delta/dg/{d}": v for d, v in outcomes.delta_dg_per_domain.items()})
        out["cf/mean"] = outcomes.cf
        out.update({f"cf/{c}": v for c, v in outcomes.cf_per_control.items()})
    if record.difficulty is not None:
        for key in DIFFICULTY_KEYS:
            out[f"difficulty/{key}"] = record.difficulty.value(key)
    for key in ("best_epoch", "val_accuracy", "trainable_params"):
        out[key] = getattr(record, key)
    return {
        k: float(v)
        for k, v in out.items()
        if v is not None and not (isinstance(v, float) and math.isnan(v))
    }
