"""Typed exceptions. Every expected failure is a :class:`ClipgapError` whose message is one line.

The CLI prints ``error: <message>`` and exits non-zero for these; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ClipgapError(Exception):
    """Base class for every error clipgap expects and explains."""

    exit_code = 2


class ConfigError(ClipgapError, ValueError):
    """A configuration key, value or file is wrong."""


class UnknownNameError(ClipgapError, KeyError):
    """A name was looked up in a registry and is not there."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(ClipgapError, ValueError):
    """A dataset is missing, empty, unreadable or inconsistent."""


class ModelError(ClipgapError, ValueError):
    """A backbone, checkpoint or model file cannot be used."""


class MetricError(ClipgapError, ValueError):
    """Inputs to a measurement are invalid (NaN, zero norm, a single cluster...)."""


class TrainingError(ClipgapError, RuntimeError):
    """Training cannot go on (non-finite loss, unsupported method...)."""


def suggest(name: str, choices: Iterable[str], *, n: int = 3) -> str:
    """Return ``" (did you mean X?)"`` for the closest choices, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
