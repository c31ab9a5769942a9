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


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of ``x`` and ``y`` (shape (B, n)); NaN for a constant row."""
    rx, ry = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    denom = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rx * ry).sum(axis=1) / np.where(denom > 0, denom, 1.0), NAN)


def bootstrap_rho_difference(
    x1: Sequence[float],
    x2: Sequence[float],
    y: Sequence[float],
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> dict:
    """Percentile bootstrap over units (e.g. tasks) of |rho(x1, y)| - |rho(x2, y)|.

    The two Spearman correlations share ``y``, so they are dependent; resampling whole units
    (rows (x1_i, x2_i, y_i) drawn with replacement) keeps that dependence. Units with a NaN in
    any of the three are dropped first. A resample in which a variable is constant has no rho
    and is left out (``n_valid`` counts the rest).

    Returns ``n`` (units kept), ``estimate`` in [-1, 1] (the difference on the data: positive =
    x1 tracks y more closely than x2 does), ``low`` and ``high``, the (1 - confidence) / 2 and
    (1 + confidence) / 2 percentiles of the bootstrap distribution (an interval in [-1, 1]),
    ``n_resamples``, ``n_valid`` and ``random_state``. Every statistic is NaN when n < 3 or a
    correlation is undefined on the data. Same inputs and ``random_state``: same result.
    """
    a, b, c = (_as_vector(v, name) for v, name in ((x1, "x1"), (x2, "x2"), (y, "y")))
    if not len(a) == len(b) == len(c):
        raise MetricError(f"x1, x2 and y must have equal length; got {len(a)}, {len(b)}, {len(c)}")
    if not 0 < confidence < 1:
        raise MetricError(f"confidence must be in (0, 1); got {confidence!r}")
    keep = ~(np.isnan(a) | np.isnan(b) | np.isnan(c))
    a, b, c = a[keep], b[keep], c[keep]
    n = len(a)
    out = {"n": n, "n_resamples": n_resamples, "random_state": random_state, "n_valid": 0}
    out.update(estimate=NAN, low=NAN, high=NAN)
    if n < MIN_POINTS:
        return out
    data = np.stack([a, b, c])[:, None, :]
    rho1, rho2 = _spearman_rows(data[0], data[2])[0], _spearman_rows(data[1], data[2])[0]
    if np.isnan(rho1) or np.isnan(rho2):
        return out
    index = np.random.default_rng(random_state).integers(0, n, size=(n_resamples, n))
    diff = np.abs(_spearman_rows(a[index], c[index])) - np.abs(_spearman_rows(b[index], c[index]))
    diff = diff[~np.isnan(diff)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(diff, [tail, 100 - tail]) if len(diff) else (NAN, NAN)
    out.update(estimate=float(abs(rho1) - abs(rho2)), low=float(low), high=float(high))
    out["n_valid"] = int(len(diff))
    return out


def williams_t(r_jk: float, r_jh: float, r_kh: float, n: int) -> tuple[float, float]:
    """Williams' t for two dependent correlations sharing variable j: is r_jk = r_jh?

    The statistic Steiger (1980) recommends for this case ("T2": Williams, 1959), from
    J. H. Steiger, "Tests for comparing elements of a correlation matrix", Psychological
    Bulletin 87(2), 245-251:

        t = (r_jk - r_jh) sqrt((n - 1)(1 + r_kh) / (2 (n - 1)/(n - 3) |R| + rbar^2 (1 - r_kh)^3))

    with |R| = 1 - r_jk^2 - r_jh^2 - r_kh^2 + 2 r_jk r_jh r_kh (the determinant of the 3 x 3
    correlation matrix) and rbar = (r_jk + r_jh) / 2; t has n - 3 degrees of freedom. Returns
    (t, two-sided p); t > 0 when r_jk > r_jh. NaN for n < 4 or a correlation outside [-1, 1].
    """
    rs = (r_jk, r_jh, r_kh)
    if n < 4 or not all(math.isfinite(r) and -1 <= r <= 1 for r in rs):
        return NAN, NAN
    det = 1 - r_jk**2 - r_jh**2 - r_kh**2 + 2 * r_jk * r_jh * r_kh
    rbar = (r_jk + r_jh) / 2
    denom = 2 * (n - 1) / (n - 3) * det + rbar**2 * (1 - r_kh) ** 3
    if denom <= 0:
        return NAN, NAN
    t = (r_jk - r_jh) * math.sqrt((n - 1) * (1 + r_kh) / denom)
    return float(t), float(2 * stats.t.sf(abs(t), n - 3))


EXACT_SIGNED_RANK_MAX_N = 50  # up to 50 nonzero differences: exact null; above: normal approx.


def _signed_rank_exact_p(abs_diffs: np.ndarray, w_plus: float) -> float:
    """Exact two-sided p of the signed-rank statistic W+ given |differences| (ties allowed).

    Under the null every sign pattern of the 2^n is equally likely, so W+ is distributed as
    the sum of a random subset of the (mid-)ranks. Ranks of tied values are multiples of 1/2:
    doubled, they are integers, and the subset-sum counts follow by convolution, O(n^3).
    """
    doubled = np.rint(2 * stats.rankdata(abs_diffs)).astype(np.int64)
    counts = np.zeros(int(doubled.sum()) + 1)
    counts[0] = 1.0
    for r in doubled:  # r >= 2: each difference adds r to W+ (doubled) or nothing
        counts[r:] += counts[:-r].copy()
    sums = np.arange(len(counts))
    centre, observed = doubled.sum() / 2, 2 * w_plus
    extreme = np.abs(sums - centre) >= abs(observed - centre) - 1e-9
    return float(min(1.0, counts[extreme].sum() / counts.sum()))


def signed_rank_test(differences: Sequence[float]) -> dict:
    """Wilcoxon signed-rank test that paired differences (e.g. method A - method B per task) are
    centred on 0: two-sided, zero differences dropped (Wilcoxon's convention, scipy's
    ``zero_method="wilcox"``), tied |differences| given mid-ranks.

    Returns ``n`` (non-NaN differences), ``n_nonzero``, ``mean`` (mean difference), ``pvalue``
    in [0, 1] (1.0 when every difference is 0: no evidence either way; NaN without a
    difference) and ``direction``: +1 when the positive differences carry more rank (W+ > W-),
    -1 when the negative ones do, 0 on a tie. The p-value is exact (over all 2^n sign
    patterns, ties included) up to ``EXACT_SIGNED_RANK_MAX_N`` nonzero differences and
    ``scipy.stats.wilcoxon``'s normal approximation above; with n nonzero differences the
    smallest possible p is 2 / 2^n (see :func:`signed_rank_min_n`).
    """
    d = _as_vector(differences, "differences")
    d = d[~np.isnan(d)]
    out = {"n": int(len(d)), "mean": float(d.mean()) if len(d) else NAN}
    nonzero = d[d != 0]
    out["n_nonzero"] = int(len(nonzero))
    if len(nonzero) == 0:
        out.update(pvalue=NAN if len(d) == 0 else 1.0, direction=0)
        return out
    ranks = stats.rankdata(np.abs(nonzero))
    w_plus = float(ranks[nonzero > 0].sum())
    out["direction"] = int(np.sign(2 * w_plus - ranks.sum()))
    if len(nonzero) <= EXACT_SIGNED_RANK_MAX_N:
        out["pvalue"] = _signed_rank_exact_p(np.abs(nonzero), w_plus)
    else:
        out["pvalue"] = float(stats.wilcoxon(nonzero, method="approx").pvalue)
    return out


def signed_rank_min_n(alpha: float) -> int:
    """Fewest paired differences for which a two-sided Wilcoxon signed-rank test can reach
    p <= ``alpha``: the smallest exact p with n differences is 2 / 2^n (all of one sign).
    6 at alpha = 0.05, 8 at 0.01."""
    if not 0 < alpha < 1:
        raise MetricError(f"alpha must be in (0, 1); got {alpha!r}")
    return max(1, math.ceil(math.log2(2 / alpha)))


def friedman_test(table: np.ndarray) -> tuple[float, float]:
    """Friedman's chi-square test that k treatments (columns) rank alike over n blocks (rows of
    ``table``, shape (n, k), no NaN): (statistic >= 0, p in [0, 1]); NaN for n < 2 or k < 3."""
    arr = np.asarray(table, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 3 or np.isnan(arr).any():
        return NAN, NAN
    if np.all(arr == arr[:, :1]):
        return 0.0, 1.0
    result = stats.friedmanchisquare(*arr.T)
    return float(result.statistic), float(result.pvalue)
