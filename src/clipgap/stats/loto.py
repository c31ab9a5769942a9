"""Leave-one-out prediction of one variable from another across units (leave-one-task-out,
LOTO): each unit predicted by the line fitted on the others, against the difficulty-free
baseline (the mean of the others); :class:`Association` scores a measure as a predictor."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from clipgap.stats.correlations import relate
from clipgap.stats.inputs import NAN
from clipgap.stats.lines import Fit, fit_line


def loto_predictions(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out predictions: for each i, the line fitted on the other points evaluated
    at x[i], and the difficulty-free baseline (mean of y over the other points)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    line_pred = np.empty(n)
    base_pred = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        line_pred[i] = fit_line(x[keep], y[keep]).predict(x[i])
        base_pred[i] = y[keep].mean()
    return line_pred, base_pred


@dataclass(frozen=True)
class Association:
    """How well one measure x predicts one outcome y across ``n`` units.

    ``loto_mae``: mean |y_i - line fitted without unit i, at x_i| (same units as y; lower is
    better). ``baseline_mae``: the same for the mean of y over the other units (no measure).
    ``fit``: the least-squares line and correlations on all units (:func:`relate`, without
    p-values); ``r2``, ``spearman``, ``kendall`` and ``slope`` are read from it.
    ``weighted_tau``: scipy's hyperbolically weighted Kendall tau in [-1, 1]. A statistic that
    is undefined for the data (constant x or y) is NaN.
    """

    fit: Fit
    loto_mae: float
    baseline_mae: float
    weighted_tau: float

    @property
    def n(self) -> int:
        return self.fit.n

    @property
    def r2(self) -> float:
        return self.fit.r2

    @property
    def spearman(self) -> float:
        return self.fit.spearman_rho

    @property
    def kendall(self) -> float:
        return self.fit.kendall_tau

    @property
    def slope(self) -> float:
        return self.fit.slope


def associate(x: np.ndarray, y: np.ndarray) -> Association:
    """All the statistics of :class:`Association` for paired values (n >= 3, finite)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    line_pred, base_pred = loto_predictions(x, y)
    fit = relate(x, y, pvalues=False)
    wtau = NAN
    if fit.correlated:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            wtau = float(stats.weightedtau(x, y)[0])
    return Association(
        fit=fit,
        loto_mae=float(np.mean(np.abs(line_pred - y))),
        baseline_mae=float(np.mean(np.abs(base_pred - y))),
        weighted_tau=wtau,
    )
