"""How two variables relate across units (e.g. tasks): Pearson, Spearman and Kendall
correlations with two-sided p-values, with the least-squares line (:func:`relate`), and
Spearman's rho of many resamples at once."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from itertools import permutations

import numpy as np
from scipy import stats

from clipgap.stats.inputs import MIN_POINTS, NAN, paired, varies
from clipgap.stats.lines import Fit, fit_line

EXACT_SPEARMAN_MAX_N = 9  # up to 9! = 362,880 permutations: exact p-value; above: t approximation


def exact_spearman_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided permutation p-value of Spearman's rho, exact over all n! orderings of y.

    The t approximation scipy uses is far too small for the handful of tasks a study has
    (rho = 1 on 5 tasks gives p ~ 1e-24; the exact value is 2/120). Ties keep average ranks.
    """
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    perms = np.array(list(permutations(ry)), dtype=np.float64)
    denom = np.sqrt((rx @ rx) * (ry @ ry))
    observed = abs(rx @ ry) / denom
    null = np.abs(perms @ rx) / denom
    return float(np.mean(null >= observed - 1e-12))


def _correlations(x: np.ndarray, y: np.ndarray, pvalues: bool) -> dict[str, float]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        results = (stats.pearsonr(x, y), stats.spearmanr(x, y), stats.kendalltau(x, y))
    keys = ("pearson_r", "pearson_p", "spearman_rho", "spearman_p", "kendall_tau", "kendall_p")
    out = dict(zip(keys, (float(v) for res in results for v in (res[0], res[1])), strict=True))
    if not pvalues:
        out.update(pearson_p=NAN, spearman_p=NAN, kendall_p=NAN)
    elif len(x) <= EXACT_SPEARMAN_MAX_N:
        out["spearman_p"] = exact_spearman_p(x, y)
    return out


def relate(x: Sequence[float], y: Sequence[float], *, pvalues: bool = True) -> Fit:
    """Correlations and the least-squares line between two equal-length sequences.

    Pairs where either value is NaN are dropped first; ``n`` is the number of pairs kept. The
    line follows :func:`~clipgap.stats.lines.fit_line` (flat at mean(y) for a constant x); the
    correlations, their p-values and ``r2`` are NaN when n < 3 or either variable is constant
    (the package rule). ``pvalues=False`` leaves the p-values NaN (no permutations: for loops).
    Infinite values or unequal lengths raise :class:`~clipgap.errors.MetricError`.
    """
    xa, ya = paired(x, y)
    line = fit_line(xa, ya)
    if len(xa) < MIN_POINTS or not varies(xa) or not varies(ya):
        return line
    residual = ya - (line.slope * xa + line.intercept)
    r2 = float(1.0 - (residual @ residual) / np.sum((ya - ya.mean()) ** 2))
    return replace(line, r2=r2, **_correlations(xa, ya, pvalues))


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of ``x`` and ``y`` (shape (B, n)); NaN for a constant row."""
    rx, ry = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    denom = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rx * ry).sum(axis=1) / np.where(denom > 0, denom, 1.0), NAN)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho over the pairs without NaN (NaN below ``MIN_POINTS`` pairs or when
    either variable is constant)."""
    xa, ya = paired(x, y)
    if len(xa) < MIN_POINTS or not varies(xa) or not varies(ya):
        return NAN
    return float(stats.spearmanr(xa, ya)[0])


def partial_spearman(x: Sequence[float], y: Sequence[float], z: Sequence[float]) -> float:
    """Spearman's rho of x and y with z held fixed: the rank correlation of x and y less what
    each shares with z, ``(r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2))`` over the
    triples without NaN; NaN when a rho is undefined or z fully explains x or y."""
    xa, ya, za = (np.asarray(v, dtype=np.float64) for v in (x, y, z))
    keep = np.isfinite(xa) & np.isfinite(ya) & np.isfinite(za)
    xa, ya, za = xa[keep], ya[keep], za[keep]
    r_xy, r_xz, r_yz = spearman(xa, ya), spearman(xa, za), spearman(ya, za)
    denom = (1.0 - r_xz**2) * (1.0 - r_yz**2)
    if not np.isfinite(r_xy) or not np.isfinite(denom) or denom <= 1e-12:
        return NAN
    return float((r_xy - r_xz * r_yz) / np.sqrt(denom))
