"""Where runs execute. The grid hands runs to an executor and never cares how they run.

A distributed executor implements the same two-call protocol (e.g. one job per run on a
cluster, each job calling :func:`clipgap.study.runner.execute_run` in its own process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from clipgap.record import RunRecord
from clipgap.study.plan import RunSpec

Work = Callable[[RunSpec], RunRecord]
Done = Callable[[RunSpec, RunRecord], None]


class Executor(Protocol):
    def run(self, runs: Sequence[RunSpec], work: Work, on_done: Done) -> None:
        """Execute ``work(run)`` for every run and call ``on_done(run, record)`` as each ends."""


class LocalExecutor:
    """Runs one after another in this process (models and tasks stay loaded between runs)."""

    def run(self, runs: Sequence[RunSpec], work: Work, on_done: Done) -> None:
        for run in runs:
            on_done(run, work(run))


EXECUTORS: dict[str, Callable[[], Executor]] = {"local": LocalExecutor}
