"""Thread counts: the fixed one world pretraining runs with, and a command's ``--threads``.

The thread count decides how torch splits its reductions, so it changes the last bits of every
step and, over hundreds of steps, the pretrained weights. Pretraining therefore runs with the
count its config names (``PretrainConfig.threads``, default ``DEFAULT_THREADS`` = 1), which is
part of the checkpoint key: a model name means one set of weights, whatever the command line
says. A variant may name another count (``world:pretrain.threads=2``); it is cached apart.

One thread is the default because it does not depend on the machine's core count, and because
the world CLIP is so small that more threads mostly wait on each other: on the 2-core machine
this was developed on, 30 pretraining steps took 10 s with 1 thread and 23 s with 2 (176 s with 2
while other jobs kept the cores busy).

A command's ``--threads N`` (:func:`command_threads`) only sets how that command computes
(fine-tuning, evaluation); pretraining inside it still uses its config's count.
"""

from __future__ import annotations

import contextlib

from clipgap.devices import torch_threads
from clipgap.errors import ConfigError

DEFAULT_THREADS = 1


def check_threads(value: object, where: str) -> int:
    """``value`` as a thread count >= 1, or a ConfigError naming ``where``."""
    try:
        threads = int(str(value).strip())
    except ValueError:
        threads = 0
    if threads < 1 or str(value).strip() != str(threads):
        raise ConfigError(f"{where}={value!r}: expected a whole number of threads >= 1")
    return threads


@contextlib.contextmanager
def command_threads(threads: int | None):
    """For one command: ``threads`` torch threads, restored on exit (None changes nothing).
    World pretraining inside keeps its own config's count."""
    if threads is None:
        yield
        return
    with torch_threads(check_threads(threads, "--threads")):
        yield
