"""Significance tests: Holm's multiple-testing control, Williams' t for two dependent
correlations, Wilcoxon's signed-rank test (exact p) and Friedman's test. The significance level
is called ``level`` (``alpha`` is the interpolation weight)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from clipgap.errors import MetricError
from clipgap.stats.inputs import NAN, as_vector


def holm(pvalues: Sequence[float], level: float) -> list[bool]:
    """Holm-Bonferroni step-down: which of ``pvalues`` are rejected at family-wise level ``level``.

    NaN p-values are not tests: they are never rejected and do not count towards the family.
    """
    tested = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    rejected = [False] * len(pvalues)
    m = len(tested)
    for rank, (p, i) in enumerate(tested):
        if p > level / (m - rank):
            break
        rejected[i] = True
    return rejected


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
    d = as_vector(differences, "differences")
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


def signed_rank_min_n(level: float) -> int:
    """Fewest paired differences for which a two-sided Wilcoxon signed-rank test can reach
    p <= ``level``: the smallest exact p with n differences is 2 / 2^n (all of one sign).
    6 at level = 0.05, 8 at 0.01."""
    if not 0 < level < 1:
        raise MetricError(f"level must be in (0, 1); got {level!r}")
    return max(1, math.ceil(math.log2(2 / level)))


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
