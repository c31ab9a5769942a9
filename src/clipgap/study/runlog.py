"""Logging one run to its own file: the study's ``run.log``, ``clipgap finetune``'s ``train.log``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def run_log(path: str | Path) -> Iterator[logging.Logger]:
    """Send clipgap's INFO records to ``path`` while the block runs; yields the ``clipgap``
    logger.

    Records still reach the root handlers, which keep their own levels (the CLI's console shows
    warnings, more with ``-v``).
    """
    logger = logging.getLogger("clipgap")
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
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
