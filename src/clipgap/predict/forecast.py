"""A new task's outcomes under every method, from the predictor the nested procedure picks on
the study, with intervals that cover: the OLS-type interval when its empirical LOTO coverage
reaches the target, otherwise a conformal interval from the nested LOTO residuals (which
include the choice of predictor).
"""

from __future__ import annotations

import math

import numpy as np

from clipgap.predict.honest import NestedQuality, conformal_half_width
from clipgap.predict.result import OutcomePrediction
from clipgap.stats import NAN
from clipgap.stats.candidates import design
from clipgap.stats.nested import NestedRun, ols_half_width


def new_row(run: NestedRun, values: dict[str, float]) -> np.ndarray:
    """The design row of the new task for the predictor chosen on all tasks."""
    cand = run.cands[run.best]
    columns = {f: np.array([values[f]]) for f in cand.features} or {"_": np.zeros(1)}
    return design(cand, columns, run.scale)[0]


def line_of(run: NestedRun, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slope, intercept) per target in the measure's own units; NaN slope for ridge."""
    cand, s = run.cands[run.best], run.full[run.best]
    b = s.coef @ Y  # (q, T)
    if len(cand.features) != 1:
        return np.full(Y.shape[1], NAN if cand.features else 0.0), b[0]
    mu, sd = run.scale[cand.features[0]]
    return b[1] / sd, b[0] - b[1] * mu / sd


def forecast(
    run: NestedRun, quality: NestedQuality, Y: np.ndarray, values: dict[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions (T,) at the new task and the lower and upper interval bounds (NaN where no
    finite interval exists at this number of tasks)."""
    ahead = new_row(run, values) @ run.full[run.best].coef  # (n,)
    pred = ahead @ Y
    if quality.interval_method == "ols":
        half = ols_half_width(run.full[run.best], Y, ahead, quality.interval)
    else:
        half = conformal_half_width(run, Y, quality.interval)
    half = np.where(np.isfinite(half), half, NAN)
    return pred, pred - half, pred + half


def outcome_predictions(
    run, quality, Y, values, targets: list[tuple[str, str]]
) -> dict[str, list[OutcomePrediction]]:
    """method -> its OutcomePredictions, for targets (method, outcome) in Y's column order."""
    pred, low, high = forecast(run, quality, Y, values)
    slope, intercept = line_of(run, Y)
    out: dict[str, list[OutcomePrediction]] = {}
    for t, (method, outcome) in enumerate(targets):
        out.setdefault(method, []).append(
            OutcomePrediction(
                outcome,
                float(pred[t]),
                float(low[t]),
                float(high[t]),
                float(slope[t]),
                float(intercept[t]),
                Y.shape[0],
            )  # fmt: skip
        )
    return out


def outside_range(run: NestedRun, values: dict[str, float], far: float) -> list[str]:
    """One line per measure of the chosen predictor whose new value lies outside the studied
    range widened by ``far`` of its span on each side (0: the range itself): the predictions
    extrapolate."""
    cand = run.cands[run.best]
    out = []
    for f in cand.features:
        x0 = values[f]
        x = run.columns[f]
        lo, hi = float(x.min()), float(x.max())
        span = hi - lo
        if lo - far * span <= x0 <= hi + far * span and math.isfinite(x0):
            continue
        beyond = f" by more than {far:.0%} of its span" if far > 0 else ""
        out.append(
            f"the new task's {f} = {x0:.4g} lies outside the studied range [{lo:.4g}, "
            f"{hi:.4g}]{beyond}: the predictions extrapolate, trust them less"
        )
    return out
