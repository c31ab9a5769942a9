"""What a study says about a new task: which difficulty measure predicts fine-tuning outcomes,
and which PEFT method to pick for a task from its difficulty alone.

Pure analysis over run records (:mod:`clipgap.record`); only :func:`recommend` touches a model,
to measure the new task's difficulty.
"""

from clipgap.predict.linear import Association, Line, associate, fit_line, prediction_interval
from clipgap.predict.measures import MeasureComparison, MeasureRank, MeasureScore, compare_measures
from clipgap.predict.objective import DEFAULT_OBJECTIVE, OBJECTIVE_KEYS, parse_objective
from clipgap.predict.quality import LotoQuality
from clipgap.predict.recommend import recommend, recommend_from_difficulty
from clipgap.predict.result import MethodPrediction, OutcomePrediction, Recommendation
from clipgap.predict.table import OUTCOMES, POOLED, StudyTable, read_study, study_table

__all__ = [
    "DEFAULT_OBJECTIVE",
    "OBJECTIVE_KEYS",
    "OUTCOMES",
    "POOLED",
    "Association",
    "Line",
    "LotoQuality",
    "MeasureComparison",
    "MeasureRank",
    "MeasureScore",
    "MethodPrediction",
    "OutcomePrediction",
    "Recommendation",
    "StudyTable",
    "associate",
    "compare_measures",
    "fit_line",
    "parse_objective",
    "prediction_interval",
    "read_study",
    "recommend",
    "recommend_from_difficulty",
    "study_table",
]
