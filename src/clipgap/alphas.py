"""Interpolation weights (alphas): the one rule every entry point checks them by.

An alpha is a number in [0, 1] between the zero-shot model (0) and the fine-tuned model (1)
(:mod:`clipgap.interpolate`). A list of alphas is non-empty, has no value twice and is used in
ascending order, whether it comes from a study's ``eval.alphas``, ``clipgap evaluate --alphas``
or :func:`clipgap.interpolate.accuracy_along_alphas`. Every problem is a one-line ConfigError
naming where the value came from. Plain Python: checking a list of numbers imports nothing heavy.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from clipgap.errors import ConfigError

__all__ = ["DEFAULT_ALPHAS", "check_alpha", "check_alphas", "parse_alphas"]

# Only the fine-tuned model itself (alpha = 1): what a run scores without a sweep.
DEFAULT_ALPHAS: tuple[float, ...] = (1.0,)


def check_alpha(value, *, where: str = "alpha") -> float:
    """``value`` as a float in [0, 1]; ConfigError naming ``where`` and the value otherwise."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number in [0, 1], got {value!r}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}: {value!r} is outside [0, 1]")
    return float(value)


def check_alphas(values: Iterable, *, where: str = "alphas", shown=None) -> tuple[float, ...]:
    """``values`` as a sorted tuple of distinct alphas in [0, 1].

    ConfigError (one line) for an empty list, an entry that is not a number in [0, 1] (named
    ``where[i]``) and a value listed twice; ``shown`` is how the whole list is quoted in the
    message (default: the list itself).
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise _not_a_list(where, values)
    values = list(values)
    if not values:
        raise _not_a_list(where, values)
    alphas = [check_alpha(v, where=f"{where}[{i}]") for i, v in enumerate(values)]
    if len(set(alphas)) != len(alphas):
        raise ConfigError(
            f"{where}: a value is listed more than once in {values if shown is None else shown}"
        )
    return tuple(sorted(alphas))


def _not_a_list(where: str, values) -> ConfigError:
    return ConfigError(
        f"{where}: expected a non-empty list of numbers in [0, 1] (e.g. [0, 0.5, 1]), "
        f"got {values!r}"
    )


def parse_alphas(text: str, *, where: str = "--alphas") -> tuple[float, ...]:
    """Comma-separated alphas (``"0,0.25,1"``) under :func:`check_alphas`'s rule (sorted, each
    once). ConfigError (one line, naming the offending entry) for an empty entry, an entry that
    is not a number or lies outside [0, 1], and a value given twice."""
    values = []
    for raw in str(text).split(","):
        item = raw.strip()
        if not item:
            raise ConfigError(
                f"{where}: empty entry in {text!r} (expected comma-separated numbers in [0, 1])"
            )
        try:
            value = float(item)
        except ValueError:
            raise ConfigError(
                f"{where}: {item!r} is not a number (expected comma-separated numbers in [0, 1])"
            ) from None
        values.append(check_alpha(value, where=where))
    return check_alphas(values, where=where, shown=repr(str(text)))
