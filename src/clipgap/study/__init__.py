"""The study: a grid of tasks x methods x shots x seeds, fine-tuned, evaluated and reported.

One run, in or out of a study, is :func:`execute_run` on a :class:`RunSpec` and a
:class:`RunContext`; it returns a :class:`clipgap.record.RunRecord`.
"""

from clipgap.record import read_record
from clipgap.study.config import StudyConfig, TaskEntry, load_study_config
from clipgap.study.context import RunContext
from clipgap.study.grid import StudyOutcome, run_study
from clipgap.study.plan import plan_runs
from clipgap.study.runlog import run_log
from clipgap.study.runner import execute_run
from clipgap.study.spec import RunSpec, resolve_run

__all__ = [
    "RunContext",
    "RunSpec",
    "StudyConfig",
    "StudyOutcome",
    "TaskEntry",
    "execute_run",
    "load_study_config",
    "plan_runs",
    "read_record",
    "resolve_run",
    "run_log",
    "run_study",
]
