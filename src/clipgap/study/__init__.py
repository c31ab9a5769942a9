"""The study: a grid of tasks x methods x seeds, fine-tuned, evaluated and reported."""

from clipgap.study.config import StudyConfig, TaskEntry, load_study_config
from clipgap.study.grid import StudyOutcome, read_record, run_study
from clipgap.study.plan import RunSpec, plan_runs

__all__ = [
    "RunSpec",
    "StudyConfig",
    "StudyOutcome",
    "TaskEntry",
    "load_study_config",
    "plan_runs",
    "read_record",
    "run_study",
]
