"""Least-squares lines of an outcome on one difficulty measure, their prediction intervals, and
leave-one-task-out (LOTO) predictions. Pure functions on 1-D float arrays (one value per task).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

NAN = float("nan")
LEVEL = 0.90  # two-sided coverage of the prediction intervals clipgap reports


@dataclass(frozen=True)
class Line:
    """The least-squares line ``y = slope * x + intercept`` over ``n`` points.

    ``x_mean`` and ``sxx`` (sum of squared deviations of x) and ``resid_std`` (residual standard
    deviation with n - 2 degrees of freedom; NaN when n < 3) define the prediction interval.
    ``constant`` is True when x does not vary: the line is then the mean of y (slope 0) and the
    residual standard deviation has n - 1 degrees of freedom.
    """

    slope: float
    intercept: float
    n: int
    x_mean: float
    sxx: float
    resid_std: float
    constant: bool = False

    @property
    def dof(self) -> int:
        return self.n - (1 if self.constant else 2)

    def predict(self, x0: float) -> float:
        return self.slope * x0 + self.intercept


def fit_line(x: np.ndarray, y: np.ndarray) -> Line:
    """Ordinary least squares of y on x (both 1-D, same length >= 1, finite).

    With constant x (or a single point) the best line is flat at mean(y): slope 0.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    x_mean, y_mean = float(x.mean()), float(y.mean())
    dx = x - x_mean
    sxx = float(dx @ dx)
    constant = n < 2 or sxx <= 1e-24 * max(1.0, x_mean * x_mean)
    slope = 0.0 if constant else float(dx @ (y - y_mean)) / sxx
    intercept = y_mean - slope * x_mean
    resid = y - (slope * x + intercept)
    dof = n - (1 if constant else 2)
    resid_std = math.sqrt(float(resid @ resid) / dof) if dof > 0 else NAN
    return Line(slope, intercept, n, x_mean, sxx, resid_std, constant)


def prediction_interval(line: Line, x0: float, *, level: float = LEVEL) -> tuple[float, float]:
    """Two-sided ``level`` prediction interval for a new observation at ``x0``.

    The standard OLS interval: yhat +- t_{(1+level)/2, n-2} * s * sqrt(1 + 1/n + (x0 - xbar)^2 /
    Sxx), with s the residual standard deviation. For a flat line (constant x) the mean model's
    interval yhat +- t_{(1+level)/2, n-1} * s * sqrt(1 + 1/n). (NaN, NaN) when there are no
    residual degrees of freedom (n <= 2 for a line): no interval can be estimated.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level}")
    if line.dof < 1 or not math.isfinite(line.resid_std):
        return NAN, NAN
    spread = 1.0 + 1.0 / line.n
    if not line.constant:
        spread += (x0 - line.x_mean) ** 2 / line.sxx
    half = float(stats.t.ppf(0.5 + level / 2.0, line.dof)) * line.resid_std * math.sqrt(spread)
    center = line.predict(x0)
    return center - half, center + half


def loto_predictions(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-task-out predictions: for each i, the line fitted on the other points evaluated
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
    """How well one measure x relates to one outcome y across ``n`` tasks.

    ``loto_mae``: mean |y_i - line fitted without task i, at x_i| (same units as y; lower is
    better). ``baseline_mae``: the same for the mean of y over the other tasks (no difficulty).
    ``r2``: in-sample R^2 of the least-squares line, in [0, 1]. ``spearman``, ``kendall``,
    ``weighted_tau`` (scipy's hyperbolically weighted Kendall tau): rank correlations in [-1, 1].
    A statistic that is undefined for the data (constant x or y) is NaN.
    """

    n: int
    loto_mae: float
    baseline_mae: float
    r2: float
    spearman: float
    kendall: float
    weighted_tau: float
    slope: float


def associate(x: np.ndarray, y: np.ndarray) -> Association:
    """All the statistics of :class:`Association` for paired values (n >= 3, finite)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    line_pred, base_pred = loto_predictions(x, y)
    line = fit_line(x, y)
    varies = np.ptp(x) > 0 and np.ptp(y) > 0
    if varies:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            r = float(np.corrcoef(x, y)[0, 1])
            rho = float(stats.spearmanr(x, y)[0])
            tau = float(stats.kendalltau(x, y)[0])
            wtau = float(stats.weightedtau(x, y)[0])
    else:
        r = rho = tau = wtau = NAN
    return Association(
        n=len(x),
        loto_mae=float(np.mean(np.abs(line_pred - y))),
        baseline_mae=float(np.mean(np.abs(base_pred - y))),
        r2=r * r,
        spearman=rho,
        kendall=tau,
        weighted_tau=wtau,
        slope=line.slope,
    )
