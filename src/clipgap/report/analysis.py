"""The analysis of a study: every table, statistic and verdict the report shows, computed from
its run records (:func:`analyse`). Rendering reads this object only.

A search's trials are filtered here, once: every table, statistic, claim and figure but the
search's own (:mod:`.trials`) sees the selected trial of each task x method x seed only
(:func:`clipgap.report.selection.selection_flags`); ``results`` keeps every run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from clipgap.report import tables
from clipgap.report.claims import Claim, ClaimOptions, evaluate_claims
from clipgap.report.frontier import Frontier, frontier_analysis
from clipgap.report.labels import OUTCOMES, order_arms
from clipgap.report.measure_ranking import MeasureRanking, measure_rankings
from clipgap.report.relations import relation_table
from clipgap.report.scopes import claim_groups, paper_means, scope_name, shots_table
from clipgap.report.selection import selection_flags
from clipgap.report.study import Study
from clipgap.report.trials import trials_table


@dataclass(frozen=True)
class Analysis:
    """What the report shows, computed from the results frame (see :mod:`.tables`).

    ``frame``: one row per finished run. ``difficulty``: per task. ``cells``: per (task, arm),
    outcome means and stds over seeds. ``methods``: per arm, over tasks. ``groups``: the claim
    groups, ``{preset or "": {paper method: arm}}``. ``means``: per claim-group scope, the task
    means over its five paper methods. ``relations``: difficulty vs outcome statistics per
    scope. ``forgetting``: CF per (task, arm, control task). ``shots``: outcomes against
    training images per class (empty without limited-data runs). ``claims``: the verdicts.
    ``options``: what decided them. ``measures``: which difficulty measure predicts which
    outcome, per preset (:mod:`.measures`). ``frontier``: the gain-forgetting frontier along
    interpolation (:mod:`.frontier`; None when no run was scored along alpha). ``results``:
    one row per finished run, every trial of a search included (``results.csv``; ``frame`` is
    its selected rows). ``trials``: a search's trials (:func:`.trials.trials_table`; None
    without a search).
    """

    frame: pd.DataFrame
    difficulty: pd.DataFrame
    cells: pd.DataFrame
    methods: pd.DataFrame
    groups: dict[str, dict[str, str]]
    means: dict[str, pd.DataFrame]
    relations: pd.DataFrame
    forgetting: pd.DataFrame
    shots: pd.DataFrame
    claims: list[Claim]
    options: ClaimOptions
    measures: list[MeasureRanking]
    frontier: Frontier | None = None
    results: pd.DataFrame | None = None
    trials: pd.DataFrame | None = None

    @property
    def level(self) -> float:
        """The significance level of the claims and the statistics tables."""
        return self.options.level


def analyse(study: Study, options: ClaimOptions | None = None) -> Analysis:
    """Tables, difficulty/outcome statistics and claim verdicts of a loaded study."""
    options = options or ClaimOptions()
    results = tables.results_frame(study)
    trials = trials_table(study, results)
    flags = selection_flags(study.records)
    study = replace(
        study, records=[r for r, keep in zip(study.records, flags, strict=True) if keep]
    )
    frame = results[results["selected"]].reset_index(drop=True)
    difficulty = tables.difficulty_table(frame)
    cells = tables.cell_table(frame)
    groups = claim_groups(cells)
    means = {scope_name(g): paper_means(cells, difficulty, arms) for g, arms in groups.items()}
    scopes = dict(means)
    for arm in order_arms(cells["arm"]):
        scopes[arm] = cells.loc[cells["arm"] == arm, ["unit", *OUTCOMES]]
    relations = relation_table(scopes, difficulty, level=options.level)
    return Analysis(
        frame=frame,
        difficulty=difficulty,
        cells=cells,
        methods=tables.method_table(frame, cells),
        groups=groups,
        means=means,
        relations=relations,
        forgetting=tables.forgetting_table(frame),
        shots=shots_table(cells),
        claims=evaluate_claims(cells, groups, means, relations, options, split=_split(difficulty)),
        options=options,
        measures=measure_rankings(study, level=options.level),
        frontier=frontier_analysis(study, frame, difficulty, groups, options),
        results=results,
        trials=trials,
    )


def _split(difficulty: pd.DataFrame) -> str:
    """The split difficulty was measured on (``train``, ``test``, or both joined by a comma)."""
    splits = sorted({s for cell in difficulty["split"] for s in cell.split(", ") if s})
    return ", ".join(splits) or "test"
