"""Number formatting shared by the report's tables and claims (stable across platforms)."""

from __future__ import annotations

import math

MISSING = "—"


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def num(value, digits: int = 3, *, signed: bool = False) -> str:
    """``0.123`` (``+0.123`` when signed); ``—`` for None/nan; never ``-0.000``."""
    if not _finite(value):
        return MISSING
    value = round(float(value), digits)
    if value == 0:
        value = 0.0
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def pval(value) -> str:
    """A p-value with two significant digits (``0.037``, ``3.1e-05``); ``—`` when undefined."""
    if not _finite(value):
        return MISSING
    value = float(value)
    if value == 0:
        return "0"
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def mean_pm(mean, std, digits: int = 3, *, signed: bool = True) -> str:
    """``+0.120 ± 0.010``; just the mean when the spread is undefined."""
    if not _finite(mean):
        return MISSING
    text = num(mean, digits, signed=signed)
    return f"{text} ± {num(std, digits)}" if _finite(std) else text


def integer(value) -> str:
    return f"{int(value):,}" if _finite(value) else MISSING
