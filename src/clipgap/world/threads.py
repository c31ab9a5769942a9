"""Torch thread count for CPU training on a machine that may be shared with other jobs."""

from __future__ import annotations

import contextlib
import logging
import math
import os

import torch

log = logging.getLogger(__name__)


class ThreadTuner:
    """Picks the torch thread count by timing real steps, since the CPU may be shared.

    On a busy machine torch's threads wait on each other at every barrier: a 2-thread step can
    take 10x longer than a 1-thread one, while on an idle machine more threads win. The tuner
    runs with ``choice`` threads and now and then tries the other count (1 or ``most``) for up
    to ``probe`` steps, switching when that is faster than the typical step. A trial stops at
    its first step slower than ``slack`` x typical; trials that do not switch back off (every
    ``every`` steps, doubling up to 8x); a step ``slack`` x slower than typical triggers a trial
    at once. ``fixed`` > 0 disables tuning.
    """

    def __init__(self, fixed: int = 0, *, every: int = 25, probe: int = 2, slack: float = 2.0):
        self.most = fixed or max(1, min(4, os.cpu_count() or 1))
        self.tune = not fixed and self.most > 1
        self.every, self.probe, self.slack = every, probe, slack
        self.choice = self.most if fixed else 1  # safe on a busy machine; a trial tries more
        self.typical = math.inf  # moving average of seconds per step with `choice` threads
        self.steps = 0
        self.interval = self.until_trial = 3  # a first trial soon after the start
        self.trial: list[float] | None = None  # step times of the other count, while trying it

    def _other(self) -> int:
        return 1 if self.choice != 1 else self.most

    def threads(self) -> int:
        """The thread count for the next step."""
        return self._other() if self.trial is not None else self.choice

    def record(self, seconds: float) -> None:
        """Report how long the step run with :meth:`threads` took."""
        self.steps += 1
        if not self.tune or self.steps == 1:  # the first step pays one-off setup costs
            return
        if self.trial is not None:
            self.trial.append(seconds)
            if seconds > self.slack * self.typical or len(self.trial) == self.probe:
                self._decide()
            return
        spike = seconds > self.slack * self.typical
        if spike or math.isinf(self.typical):
            self.typical = seconds  # conditions changed: compare the trial with the new pace
        else:
            self.typical = 0.7 * self.typical + 0.3 * seconds
        self.until_trial -= 1
        if spike or self.until_trial <= 0:
            self.trial = []

    def _decide(self) -> None:
        best = min(self.trial)
        if best < self.typical:
            log.debug("thread tuner: %d threads (%.3fs < %.3fs)", self._other(), best, self.typical)
            self.choice, self.typical, self.interval = self._other(), best, self.every
        else:
            self.interval = min(
                8 * self.every, 2 * self.interval if self.steps > 10 else self.every
            )
        self.until_trial = self.interval
        self.trial = None


@contextlib.contextmanager
def restore_threads():
    """Restore torch's thread count on exit (pretraining changes it)."""
    previous = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(previous)
