"""The objective a recommendation ranks methods by: w_id * dID + w_dg * dDG + w_cf * CF."""

from __future__ import annotations

import math
from collections.abc import Mapping

from clipgap.errors import ConfigError, UnknownNameError, suggest
from clipgap.record import OUTCOME_LABELS

# objective key -> outcome of the study table
OBJECTIVE_KEYS = {"id": "delta_id", "dg": "delta_dg", "cf": "cf"}
DEFAULT_OBJECTIVE = {"id": 1.0, "dg": 1.0, "cf": 1.0}


def check_objective(objective: Mapping) -> dict[str, float]:
    """Weights for every key of :data:`OBJECTIVE_KEYS` (missing keys = 0); finite numbers, not
    all zero. Negative weights are allowed (they penalise an outcome)."""
    if not isinstance(objective, Mapping):
        raise ConfigError(f"objective must map id/dg/cf to weights; got {objective!r:.60}")
    weights = dict.fromkeys(OBJECTIVE_KEYS, 0.0)
    for key, value in objective.items():
        if key not in OBJECTIVE_KEYS:
            raise UnknownNameError(
                f"unknown objective key {key!r}{suggest(str(key), OBJECTIVE_KEYS)}; "
                f"valid keys: {', '.join(OBJECTIVE_KEYS)}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"objective weight {key}={value!r} is not a number")
        if not math.isfinite(value):
            raise ConfigError(f"objective weight {key}={value!r} is not a finite number")
        weights[key] = float(value)
    if all(w == 0 for w in weights.values()):
        raise ConfigError(
            "objective weights are all zero; give at least one of id, dg, cf a non-zero weight"
        )
    return weights


def parse_objective(text: str) -> dict[str, float]:
    """``"id=1,dg=0.5,cf=2"`` -> checked weights (missing keys = 0)."""
    raw = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"--objective part {part!r} is not KEY=WEIGHT (e.g. id=1,dg=1,cf=1)")
        try:
            raw[key] = float(value)
        except ValueError:
            raise ConfigError(f"objective weight {key}={value.strip()!r} is not a number") from None
    if not raw:
        raise ConfigError(f"--objective {text!r} has no KEY=WEIGHT (e.g. id=1,dg=1,cf=1)")
    return check_objective(raw)


def describe(weights: Mapping[str, float]) -> str:
    """``1*dID + 0.5*dDG`` (zero weights left out)."""
    return " + ".join(
        f"{w:g}*{OUTCOME_LABELS[OBJECTIVE_KEYS[k]]}" for k, w in weights.items() if w != 0
    )
