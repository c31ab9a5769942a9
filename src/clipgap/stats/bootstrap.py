"""Bootstrap intervals over units (e.g. tasks): the difference of two dependent Spearman
correlations that share one variable."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clipgap.errors import MetricError
from clipgap.stats.correlations import spearman_rows
from clipgap.stats.inputs import MIN_POINTS, NAN, as_vector


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
    a, b, c = (as_vector(v, name) for v, name in ((x1, "x1"), (x2, "x2"), (y, "y")))
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
    rho1, rho2 = spearman_rows(data[0], data[2])[0], spearman_rows(data[1], data[2])[0]
    if np.isnan(rho1) or np.isnan(rho2):
        return out
    index = np.random.default_rng(random_state).integers(0, n, size=(n_resamples, n))
    diff = np.abs(spearman_rows(a[index], c[index])) - np.abs(spearman_rows(b[index], c[index]))
    diff = diff[~np.isnan(diff)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(diff, [tail, 100 - tail]) if len(diff) else (NAN, NAN)
    out.update(estimate=float(abs(rho1) - abs(rho2)), low=float(low), high=float(high))
    out["n_valid"] = int(len(diff))
    return out
