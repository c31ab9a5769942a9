"""The analysis of a study: every table, statistic and verdict the report shows, computed from
its run records (:func:`analyse`). Rendering reads this object only."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from clipgap.report import tables
from clipgap.report.claims import Claim, ClaimOptions, evaluate_claims
from clipgap.report.relations import relation_table
from clipgap.report.study import Study


@dataclass(frozen=True)
class Analysis:
    """What the report shows, computed from the results frame (see :mod:`.tables`).

    ``frame``: one row per finished run. ``difficulty``: per task. ``cells``: per (task, arm),
    outcome means and stds over seeds. ``methods``: per arm, over tasks. ``means``: per task,
    outcomes averaged over arms. ``relations``: difficulty vs outcome statistics per scope.
    ``forgetting``: CF per (task, arm, control task). ``claims``: the verdicts. ``alpha``: the
    significance level used.
    """

    frame: pd.DataFrame
    difficulty: pd.DataFrame
    cells: pd.DataFrame
    methods: pd.DataFrame
    means: pd.DataFrame
    relations: pd.DataFrame
    forgetting: pd.DataFrame
    claims: list[Claim]
    alpha: float


def analyse(study: Study, options: ClaimOptions | None = None) -> Analysis:
    """Tables, difficulty/outcome statistics and claim verdicts of a loaded study."""
    options = options or ClaimOptions()
    frame = tables.results_frame(study)
    difficulty = tables.difficulty_table(frame)
    cells = tables.cell_table(frame)
    means = tables.task_means(cells, difficulty)
    relations = relation_table(cells, means, difficulty, alpha=options.alpha)
    return Analysis(
        frame=frame,
        difficulty=difficulty,
        cells=cells,
        methods=tables.method_table(frame, cells),
        means=means,
        relations=relations,
        forgetting=tables.forgetting_table(frame),
        claims=evaluate_claims(relations, cells, options),
        alpha=options.alpha,
    )
