"""The predictors a nested leave-one-task-out procedure chooses among, as linear smoothers.

A candidate predicts an outcome from one difficulty measure (a least-squares line), from two or
three measures (ridge on standardised measures, unpenalised intercept), or from no difficulty at
all (the baselines: each method's mean, a line on the number of classes or on its log). Every
candidate is a penalised least-squares fit with a fixed penalty, so on a set of tasks its fitted
values are ``H y`` for a hat matrix ``H`` that does not depend on ``y``, and its leave-one-out
residuals are exactly ``(y_j - (H y)_j) / (1 - H_jj)``. That is what lets a whole nested
procedure, and a permutation null over it, run as a few matrix products.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from clipgap.errors import ConfigError, UnknownNameError, suggest

# Difficulty-free predictors: each method's mean outcome over the other tasks, and lines on the
# number of classes C and on log C (science.md, "Honest prediction").
BASELINES = ("mean", "n_classes", "log_n_classes")
RIDGE = 1.0  # penalty of the combined predictors, on standardised measures
MAX_COMBINE = 3


@dataclass(frozen=True)
class Candidate:
    """A predictor: a line on ``features[0]`` (one feature), ridge with ``penalty`` over several,
    or the mean (no feature)."""

    features: tuple[str, ...]
    penalty: float = 0.0

    @property
    def name(self) -> str:
        if not self.features:
            return "mean"
        if len(self.features) == 1:
            return self.features[0]
        return "ridge(" + "+".join(self.features) + ")"


def check_baselines(names) -> tuple[str, ...]:
    """Baseline names, each one of :data:`BASELINES` (at least one)."""
    names = tuple(names)
    if not names:
        raise ConfigError(f"no baseline given; choose from {', '.join(BASELINES)}")
    for name in names:
        if name not in BASELINES:
            raise UnknownNameError(
                f"unknown baseline {name!r}{suggest(str(name), BASELINES)}; "
                f"choose from {', '.join(BASELINES)}"
            )
    return names


def check_combine(combine) -> int:
    if isinstance(combine, bool) or not isinstance(combine, int) or not 1 <= combine <= 3:
        raise ConfigError(
            f"combine={combine!r}: the most measures one predictor may use must be 1, 2 or 3"
        )
    return combine


def measure_candidates(measures, *, combine: int = 2, ridge: float = RIDGE) -> list[Candidate]:
    """A line per measure, then ridge over every set of 2..``combine`` measures."""
    check_combine(combine)
    if not (isinstance(ridge, (int, float)) and math.isfinite(ridge) and ridge > 0):
        raise ConfigError(f"ridge={ridge!r}: the penalty must be a positive number")
    out = [Candidate((m,)) for m in measures]
    for size in range(2, combine + 1):
        out += [Candidate(c, float(ridge)) for c in itertools.combinations(measures, size)]
    return out


def baseline_candidates(names) -> list[Candidate]:
    return [Candidate(() if b == "mean" else (b,)) for b in check_baselines(names)]


def standardise(columns: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Per feature (mean, sd) over the study's tasks: the scale ridge penalises on. It reads the
    measures only (never outcomes), so it may use every task, held-out ones included."""
    out = {}
    for name, x in columns.items():
        sd = float(np.std(x))
        out[name] = (float(np.mean(x)), sd if sd > 0 else 1.0)
    return out


def design(cand: Candidate, columns, scale, rows=None) -> np.ndarray:
    """(n, 1 + p) design: an intercept column and the candidate's standardised features."""
    n = len(next(iter(columns.values()))) if rows is None else len(rows)
    cols = [np.ones(n)]
    for f in cand.features:
        x = columns[f] if rows is None else columns[f][rows]
        mu, sd = scale[f]
        cols.append((np.asarray(x, dtype=np.float64) - mu) / sd)
    return np.stack(cols, axis=1)


def coefficient_operator(Z: np.ndarray, penalty: float) -> np.ndarray:
    """(q, m) matrix P with coefficients = P y: pinv(Z'Z + penalty * diag(0, 1, ..)) Z'.

    The pseudo-inverse makes a measure that does not vary on the tasks fall back to the mean."""
    pen = np.full(Z.shape[1], penalty)
    pen[0] = 0.0
    return np.linalg.pinv(Z.T @ Z + np.diag(pen), rcond=1e-10) @ Z.T


@dataclass(frozen=True)
class Smoother:
    """One candidate on one set of m tasks: hat ``H`` (m, m), the leave-one-out residual operator
    ``loo`` = diag(1 / (1 - H_jj)) (I - H) and the coefficient operator ``coef`` (q, m)."""

    hat: np.ndarray
    loo: np.ndarray
    coef: np.ndarray

    @property
    def dof(self) -> float:
        """Residual degrees of freedom, m - tr(H)."""
        return float(self.hat.shape[0] - np.trace(self.hat))


def smoother(Z: np.ndarray, penalty: float) -> Smoother:
    coef = coefficient_operator(Z, penalty)
    hat = Z @ coef
    lever = np.minimum(np.diag(hat), 1.0 - 1e-9)
    loo = (np.eye(len(Z)) - hat) / (1.0 - lever)[:, None]
    return Smoother(hat, loo, coef)
