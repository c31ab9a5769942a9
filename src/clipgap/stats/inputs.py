"""Checking the numbers a statistic is given: one-dimensional, finite or NaN (a missing value),
paired sequences of equal length; and the constants of the degenerate-input rule."""

from __future__ import annotations

import numpy as np

from clipgap.errors import MetricError

NAN = float("nan")
MIN_POINTS = 3  # fewer pairs than this: no correlation, p-value or R^2 is defined


def as_vector(values, name: str) -> np.ndarray:
    """``values`` as a 1-D float array; infinite values and non-numbers are input errors."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise MetricError(f"{name} must be a sequence of numbers; got {values!r:.60}") from None
    if arr.ndim != 1:
        raise MetricError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if np.isinf(arr).any():
        raise MetricError(f"{name}[{int(np.argmax(np.isinf(arr)))}] is infinite")
    return arr


def paired(x, y) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as equal-length vectors with the pairs holding a NaN dropped."""
    xa, ya = as_vector(x, "x"), as_vector(y, "y")
    if len(xa) != len(ya):
        raise MetricError(f"x and y must have equal length; got {len(xa)} and {len(ya)}")
    keep = ~(np.isnan(xa) | np.isnan(ya))
    return xa[keep], ya[keep]


def varies(values: np.ndarray) -> bool:
    """Whether ``values`` holds at least two different numbers."""
    return len(values) > 0 and bool(np.ptp(values) > 0)
