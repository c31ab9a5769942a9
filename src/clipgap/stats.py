"""Statistics of a study's outcomes: how one measure relates to another across tasks, means and
spreads, and multiple-testing control.

Pure functions on sequences of numbers; NaN marks a missing value and is dropped, never an
error. Statistics that are undefined for the data (too few points, constant input) are NaN.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

from clipgap.errors import MetricError

NAN = float("nan")
MIN_POINTS = 3  # fewer pairs than this: no correlation is reported
EXACT_SPEARMAN_MAX_N = 9  # up to 9! = 362,880 permutations: exact p-value; above: t approximation


def _as_vector(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise MetricError(f"{name} must be a sequence of numbers; got {values!r:.60}") from None
    if arr.ndim != 1:
        raise MetricError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if np.isinf(arr).any():
        raise MetricError(f"{name}[{int(np.argmax(np.isinf(arr)))}] is infinite")
    return arr


def _fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of y = slope * x + intercept; NaN if x is constant."""
    if len(x) < 2 or np.ptp(x) == 0:
        return NAN, NAN
    dx = x - x.mean()
    slope = float(dx @ (y - y.mean()) / (dx @ dx))
    return slope, float(y.mean() - slope * x.mean())


def _correlations(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    keys = ("pearson_r", "pearson_p", "spearman_rho", "spearman_p", "kendall_tau", "kendall_p")
    if len(x) < MIN_POINTS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return dict.fromkeys(keys, NAN)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        results = (stats.pearsonr(x, y), stats.spearmanr(x, y), stats.kendalltau(x, y))
    values = [float(v) for res in results for v in (res[0], res[1])]
    out = dict(zip(keys, values, strict=True))
    if len(x) <= EXACT_SPEARMAN_MAX_N:
        out["spearman_p"] = exact_spearman_p(x, y)
    return out


def exact_spearman_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided permutation p-value of Spearman's rho, exact over all n! orderings of y.

    The t approximation scipy uses is far too small for the handful of tasks a study has
    (rho = 1 on 5 tasks gives p ~ 1e-24; the exact value is 2/120). Ties keep average ranks.
    """
    from itertools import permutations

    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    perms = np.array(list(permutations(ry)), dtype=np.float64)
    denom = np.sqrt((rx @ rx) * (ry @ ry))
    observed = abs(rx @ ry) / denom
    null = np.abs(perms @ rx) / denom
    return float(np.mean(null >= observed - 1e-12))


def relate(x: Sequence[float], y: Sequence[float]) -> dict:
    """Correlations and a least-squares line between two equal-length sequences.

    Pairs where either value is NaN are dropped first; ``n`` is the number of pairs kept.
    Returns ``pearson_r``, ``spearman_rho``, ``kendall_tau`` in [-1, 1] with their two-sided
    p-values in [0, 1] (NaN when n < 3 or either input is constant), ``slope`` and
    ``intercept`` of y = slope * x + intercept (NaN when n < 2 or x is constant) and ``r2``
    in [0, 1], the fraction of y's variance the line explains (NaN whenever pearson_r is).
    Infinite values or unequal lengths raise :class:`~clipgap.errors.MetricError`.
    """
    xa, ya = _as_vector(x, "x"), _as_vector(y, "y")
    if len(xa) != len(ya):
        raise MetricError(f"x and y must have equal length; got {len(xa)} and {len(ya)}")
    keep = ~(np.isnan(xa) | np.isnan(ya))
    xa, ya = xa[keep], ya[keep]
    out: dict = {"n": int(len(xa))}
    out.update(_correlations(xa, ya))
    slope, intercept = _fit_line(xa, ya)
    r2 = NAN
    if not math.isnan(out["pearson_r"]):
        residual = ya - (slope * xa + intercept)
        r2 = float(1.0 - (residual @ residual) / np.sum((ya - ya.mean()) ** 2))
    out.update(slope=slope, intercept=intercept, r2=r2)
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof=1) of the non-NaN values.

    The mean is NaN when no value is left, the std is NaN for fewer than two values.
    """
    arr = _as_vector(values, "values")
    arr = arr[~np.isnan(arr)]
    if len(arr) == 0:
        return NAN, NAN
    mean = float(arr.mean())
    return mean, float(arr.std(ddof=1)) if len(arr) >= 2 else NAN


def pooled_std(stds: Sequence[float], counts: Sequence[int]) -> float:
    """Pooled standard deviation of groups with standard deviations ``stds`` (ddof=1) and sizes
    ``counts``: sqrt(sum_i (n_i - 1) s_i^2 / sum_i (n_i - 1)).

    The one NaN rule: a group contributes only when n_i >= 2 and s_i is a number (a group of one
    has no spread, and weight n_i - 1 = 0 anyway); the result is NaN when no group contributes,
    never 0. With equal group sizes this is the root mean of the group variances. In [0, inf).
    """
    s, n = _as_vector(stds, "stds"), _as_vector(counts, "counts")
    if len(s) != len(n):
        raise MetricError(f"stds and counts must have equal length; got {len(s)} and {len(n)}")
    keep = ~np.isnan(s) & ~np.isnan(n) & (n >= 2)
    if not keep.any():
        return NAN
    dof = n[keep] - 1
    return float(np.sqrt((dof @ s[keep] ** 2) / dof.sum()))


def holm(pvalues: Sequence[float], alpha: float) -> list[bool]:
    """Holm-Bonferroni step-down: which of ``pvalues`` are rejected at family-wise level ``alpha``.

    NaN p-values are not tests: they are never rejected and do not count towards the family.
    """
    tested = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    rejected = [False] * len(pvalues)
    m = len(tested)
    for rank, (p, i) in enumerate(tested):
        if p > alpha / (m - rank):
            break
        rejected[i] = True
    return rejected
