"""How many torch threads world pretraining uses: a fixed number, never chosen by timing.

The thread count decides how torch splits its reductions, so it changes the last bits of every
step and, over hundreds of steps, the pretrained weights. Pretraining therefore runs with one
fixed count, resolved in this order:

1. ``PretrainConfig.threads`` when set;
2. the ``CLIPGAP_THREADS`` environment variable when set (the CLI's ``--threads N`` sets it);
3. ``DEFAULT_THREADS`` = 1.

One thread is the default because it does not depend on the machine's core count, and because
the world CLIP is so small that more threads mostly wait on each other: on the 2-core machine
this was developed on, 30 pretraining steps took 10 s with 1 thread and 23 s with 2 (176 s with 2
while other jobs kept the cores busy). The resolved count is part of the checkpoint key, so
weights pretrained with another count are cached apart and never mixed with the default ones.
"""

from __future__ import annotations

import contextlib
import os

from clipgap.devices import torch_threads
from clipgap.errors import ConfigError

DEFAULT_THREADS = 1
THREADS_ENV = "CLIPGAP_THREADS"


def check_threads(value: object, where: str) -> int:
    """``value`` as a thread count >= 1, or a ConfigError naming ``where``."""
    try:
        threads = int(str(value).strip())
    except ValueError:
        threads = 0
    if threads < 1 or str(value).strip() != str(threads):
        raise ConfigError(f"{where}={value!r}: expected a whole number of threads >= 1")
    return threads


def resolve_threads(threads: int | None) -> int:
    """The thread count pretraining uses: ``threads``, else ``$CLIPGAP_THREADS``, else 1."""
    if threads is not None:
        return check_threads(threads, "pretrain threads")
    env = os.environ.get(THREADS_ENV)
    if env:
        return check_threads(env, THREADS_ENV)
    return DEFAULT_THREADS


@contextlib.contextmanager
def command_threads(threads: int | None):
    """For one command: ``threads`` torch threads everywhere and for world pretraining
    (``$CLIPGAP_THREADS``), both restored on exit. None changes nothing."""
    if threads is None:
        yield
        return
    threads = check_threads(threads, "--threads")
    previous = os.environ.get(THREADS_ENV)
    os.environ[THREADS_ENV] = str(threads)
    try:
        with torch_threads(threads):
            yield
    finally:
        if previous is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = previous
