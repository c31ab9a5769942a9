"""The least-squares line of y on x and its prediction interval; :class:`Fit`, the one result
type of a line / correlation fit (:func:`fit_line` fills the line, :func:`~clipgap.stats.relate`
the correlations too).

Degenerate input follows the package rule (:mod:`clipgap.stats`): with a constant x (or one
point) the line is the mean model, flat at mean(y) with n - 1 residual degrees of freedom.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from clipgap.stats.inputs import NAN

LEVEL = 0.90  # two-sided coverage of the prediction intervals clipgap reports
# The statistics of a relation, in the order tables show them.
STAT_KEYS = (
    "pearson_r",
    "pearson_p",
    "spearman_rho",
    "spearman_p",
    "kendall_tau",
    "kendall_p",
    "slope",
    "intercept",
    "r2",
)


@dataclass(frozen=True)
class Fit:
    """The least-squares line ``y = slope * x + intercept`` over ``n`` pairs and, where
    computed (:func:`~clipgap.stats.relate`), how x and y correlate.

    ``x_mean``, ``sxx`` (sum of squared deviations of x) and ``resid_std`` (residual standard
    deviation with ``dof`` degrees of freedom; NaN without any) define the prediction interval.
    ``constant`` is True when x does not vary: the line is then the mean of y (slope 0).
    ``r2`` in [0, 1] is the share of y's variance the line explains; ``pearson_r``,
    ``spearman_rho``, ``kendall_tau`` in [-1, 1] with two-sided p-values in [0, 1]. A statistic
    the data do not define, or :func:`fit_line` did not compute, is NaN.
    """

    n: int
    slope: float
    intercept: float
    x_mean: float = NAN
    sxx: float = NAN
    resid_std: float = NAN
    constant: bool = False
    r2: float = NAN
    pearson_r: float = NAN
    pearson_p: float = NAN
    spearman_rho: float = NAN
    spearman_p: float = NAN
    kendall_tau: float = NAN
    kendall_p: float = NAN

    @property
    def dof(self) -> int:
        return self.n - (1 if self.constant else 2)

    @property
    def correlated(self) -> bool:
        """Whether the correlations are defined (n >= 3, neither variable constant)."""
        return not math.isnan(self.pearson_r)

    def predict(self, x0: float) -> float:
        return self.slope * x0 + self.intercept

    def as_dict(self) -> dict:
        return asdict(self)

    def as_row(self) -> dict:
        """``n`` and the :data:`STAT_KEYS` as a table shows a relation: every statistic NaN,
        the line included, when the correlations are undefined (no line without a relation)."""
        shown = self if self.correlated else Fit(self.n, NAN, NAN)
        return {"n": self.n, **{key: float(getattr(shown, key)) for key in STAT_KEYS}}


def fit_line(x: np.ndarray, y: np.ndarray) -> Fit:
    """Ordinary least squares of y on x (1-D, same length, finite); the line only.

    With constant x (or a single point) the best line is flat at mean(y): slope 0. With no
    point every number is NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    if n == 0:
        return Fit(0, NAN, NAN, constant=True)
    x_mean, y_mean = float(x.mean()), float(y.mean())
    dx = x - x_mean
    sxx = float(dx @ dx)
    constant = n < 2 or sxx <= 1e-24 * max(1.0, x_mean * x_mean)
    slope = 0.0 if constant else float(dx @ (y - y_mean)) / sxx
    intercept = y_mean - slope * x_mean
    resid = y - (slope * x + intercept)
    dof = n - (1 if constant else 2)
    resid_std = math.sqrt(float(resid @ resid) / dof) if dof > 0 else NAN
    return Fit(n, slope, intercept, x_mean, sxx, resid_std, constant)


def prediction_interval(line: Fit, x0: float, *, level: float = LEVEL) -> tuple[float, float]:
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
