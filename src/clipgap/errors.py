"""Typed exceptions. Every expected failure is a :class:`ClipgapError` whose message is one line.

The CLI prints ``error: <message>`` and exits non-zero for these; anything else is a bug and
keeps its traceback. Errors of the machine itself (a full disk, a lost permission, an output
folder deleted mid-run) are neither: :func:`environment_error` words them in one line.
"""

from __future__ import annotations

import difflib
import errno
import os
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


# Exit code of an error of the machine clipgap runs on (a full disk, a lost permission): not bad
# input, not a bug. The same command, run again once it is fixed, goes on where it stopped.
ENVIRONMENT_EXIT = 4

# errno -> (what happened, what to do about it), for the errors of the machine rather than of
# clipgap or its input.
_ENVIRONMENT = {
    errno.ENOSPC: ("no space left on device", "free space"),
    errno.EDQUOT: ("disk quota exceeded", "free space (or raise the quota)"),
    errno.EROFS: ("read-only file system", "write to a writable place (or remount it)"),
    errno.EACCES: ("permission denied", "give yourself access (or write elsewhere)"),
    errno.EPERM: ("operation not permitted", "give yourself access (or write elsewhere)"),
    errno.EIO: ("input/output error", "check the disk (dmesg)"),
    errno.ENOENT: (
        "no such file or directory (moved or deleted while clipgap ran?)",
        "restore it (or choose another output)",
    ),
}


def environment_error(exc: BaseException, *, kept: str = "") -> str | None:
    """The one-line message for an :class:`OSError` that is the machine's doing (see
    :data:`_ENVIRONMENT`), naming the path when the error does; None for any other error.

    ``kept``: what the command keeps across the failure (e.g. ``"finished runs are kept"``).
    """
    if not isinstance(exc, OSError) or exc.errno not in _ENVIRONMENT:
        return None
    what, todo = _ENVIRONMENT[exc.errno]
    where = ""
    if exc.filename is not None:
        verb = "writing" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else "at"
        where = f" {verb} {os.fsdecode(exc.filename)}"
    tail = f": {kept}" if kept and exc.errno != errno.ENOENT else ""  # gone, maybe all of it
    return f"{what}{where}; {todo} and run the same command again{tail}"
