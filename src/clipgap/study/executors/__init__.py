"""Where a study's runs execute. The grid hands pending runs to an executor and never cares how
they run: every executor calls :meth:`clipgap.study.attempt.StudyJob.attempt` for each run (in
this process, or in a Ray task), so the grid, the records and the report are the same whichever
executor ran them.

An executor is registered in :data:`~clipgap.study.execution.EXECUTORS` (its plugin list names
this package's modules) under the name a study config's ``executor`` key uses, and is built from
the study config. Its protocol:

* ``prepare(runs)``: connect and check that one run's ``resources`` fit, before anything of
  the study is written (a one-line :class:`~clipgap.errors.ConfigError` otherwise);
* ``run(job, pending, on_done)``: attempt every pending run, calling ``on_done(attempt)`` as
  each ends;
* ``close()``: disconnect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from clipgap.study.attempt import Attempt, PendingRun, StudyJob
from clipgap.study.execution import EXECUTORS
from clipgap.study.spec import RunSpec

Done = Callable[[Attempt], None]


class Executor(Protocol):
    def prepare(self, runs: Sequence[RunSpec]) -> None: ...

    def run(self, job: StudyJob, pending: Sequence[PendingRun], on_done: Done) -> None: ...

    def close(self) -> None: ...


def make_executor(cfg) -> Executor:
    """The executor ``cfg.executor`` names, built from the study config ``cfg``."""
    return EXECUTORS.get(cfg.executor)(cfg)


__all__ = ["EXECUTORS", "Executor", "make_executor"]
