"""What a study says about a new task: which difficulty measure predicts fine-tuning outcomes,
and which PEFT method to pick for a task from its difficulty alone.

Pure analysis over run records (:mod:`clipgap.record`); only :func:`recommend` touches a model,
to measure the new task's difficulty.
"""

from clipgap.predict.honest import NestedOptions, NestedQuality, nested_quality
from clipgap.predict.linear import Association, Line, associate, fit_line, prediction_interval
from clipgap.predict.measures import MeasureComparison, MeasureRank, MeasureScore, compare_measures
from clipgap.predict.objective import DEFAULT_OBJECTIVE, OBJECTIVE_KEYS, parse_objective
from clipgap.predict.quality import LotoQuality
from clipgap.predict.recommend import recommend, recommend_from_difficulty
from clipgap.predict.result import MethodPrediction, OutcomePrediction, Recommendation
from clipgap.predict.table import OUTCOMES, POOLED, StudyTable, read_study, study_table
from clipgap.predict.tables import (
    measure_ranking_figure,
    ranking_rows,
    save_measure_ranking,
    score_rows,
)

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
    "NestedOptions",
    "NestedQuality",
    "OutcomePrediction",
    "Recommendation",
    "StudyTable",
    "associate",
    "compare_measures",
    "fit_line",
    "measure_ranking_figure",
    "nested_quality",
    "parse_objective",
    "prediction_interval",
    "ranking_rows",
    "read_study",
    "recommend",
    "recommend_from_difficulty",
    "save_measure_ranking",
    "score_rows",
    "study_table",
]
