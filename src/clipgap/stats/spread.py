"""Means and spreads: the mean and sample standard deviation of values, and the pooled standard
deviation of groups."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clipgap.errors import MetricError
from clipgap.stats.inputs import NAN, as_vector


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof=1) of the non-NaN values.

    The mean is NaN when no value is left, the std is NaN for fewer than two values.
    """
    arr = as_vector(values, "values")
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
    s, n = as_vector(stds, "stds"), as_vector(counts, "counts")
    if len(s) != len(n):
        raise MetricError(f"stds and counts must have equal length; got {len(s)} and {len(n)}")
    keep = ~np.isnan(s) & ~np.isnan(n) & (n >= 2)
    if not keep.any():
        return NAN
    dof = n[keep] - 1
    return float(np.sqrt((dof @ s[keep] ** 2) / dof.sum()))
