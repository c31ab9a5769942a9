"""Logging one run to its own file: the study's ``run.log``, ``clipgap finetune``'s ``train.log``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clipgap.paths import name_path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _RunLogHandler(logging.FileHandler):
    """A file handler that stops at its first failed write (a full disk) and keeps the error
    for :func:`run_log` to raise, instead of printing a traceback for every record."""

    error: OSError | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.error is None:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802  (logging's name)
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)
        elif self.error is None:
            self.error = exc

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:  # the last flush, on a full disk
            self.error = self.error or exc


@contextmanager
def run_log(path: str | Path) -> Iterator[logging.Logger]:
    """Send clipgap's INFO records to ``path`` while the block runs; yields the ``clipgap``
    logger.

    Records still reach the root handlers, which keep their own levels (the CLI's console shows
    warnings, more with ``-v``). A write to ``path`` that fails stops the file (the block goes
    on) and raises its :class:`OSError`, naming ``path``, when the block ends.
    """
    logger = logging.getLogger("clipgap")
    handler = _RunLogHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.INFO)
    old_level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(old_level)
    if handler.error is not None:
        raise name_path(handler.error, path)
