"""What a study says about a new task: which difficulty measure predicts fine-tuning outcomes,
and which PEFT method to pick for a task from its difficulty alone.

Pure analysis over run records (:mod:`clipgap.record`); only :func:`recommend` touches a model,
to measure the new task's difficulty. Outcomes and their labels come from
:mod:`clipgap.record` (``PREDICTED_OUTCOMES``, ``OUTCOME_LABELS``), every statistic from
:mod:`clipgap.stats`.
"""

from clipgap.predict.honest import NestedOptions, NestedQuality, nested_quality
from clipgap.predict.measures import MeasureComparison, MeasureRank, MeasureScore, compare_measures
from clipgap.predict.objective import DEFAULT_OBJECTIVE, OBJECTIVE_KEYS, parse_objective
from clipgap.predict.recommend import recommend, recommend_from_difficulty
from clipgap.predict.result import MethodPrediction, OutcomePrediction, Recommendation
from clipgap.predict.table import POOLED, StudyTable, read_study, study_table

__all__ = [
    "DEFAULT_OBJECTIVE",
    "OBJECTIVE_KEYS",
    "POOLED",
    "MeasureComparison",
    "MeasureRank",
    "MeasureScore",
    "MethodPrediction",
    "NestedOptions",
    "NestedQuality",
    "OutcomePrediction",
    "Recommendation",
    "StudyTable",
    "compare_measures",
    "nested_quality",
    "parse_objective",
    "read_study",
    "recommend",
    "recommend_from_difficulty",
    "study_table",
]
