"""Relating task difficulty to fine-tuning outcomes, one point per task.

For each scope (one arm, or a claim group's five paper methods averaged per task, see
:mod:`.scopes`), each difficulty measure (ss, ACS, zero-shot accuracy) and each outcome (dID,
dDG, CF) this computes :func:`clipgap.stats.relate` over the tasks: Pearson r, Spearman rho and
Kendall tau with two-sided p-values, and a least-squares line with R^2 (shown only where the
correlations are defined: :meth:`clipgap.stats.Fit.as_row`). Significance is
Kendall's tau p < level, the significance level (scipy computes it exactly for few tasks without ties; Spearman's p is
an exact permutation p-value up to 9 tasks).

Zero-shot accuracy vs dID is partly headroom: dID = fine-tuned - zero-shot accuracy on the
task's test images, so a task the original model already solves has little left to gain
whatever its difficulty. That relation is computed and shown but ``decides`` is False for it:
it is left out of the Holm family and never decides a claim. ``holm`` marks the deciding
relations that stay significant after Holm's step-down correction within their scope.
"""

from __future__ import annotations

import math

import pandas as pd

from clipgap.report.labels import MEASURES, OUTCOMES
from clipgap.stats import STAT_KEYS, holm, relate

# The p-value that decides significance (see the module docstring).
TEST_P = "kendall_p"
# (measure, outcome) relations that are partly artefacts of how the outcome is measured.
HEADROOM = {("zero_shot_accuracy", "delta_id")}


def relation_table(
    scopes: dict[str, pd.DataFrame], difficulty: pd.DataFrame, *, level: float
) -> pd.DataFrame:
    """One row per (scope, measure, outcome): ``n`` tasks, the ``STAT_KEYS``, and booleans
    ``decides`` (not a headroom relation), ``significant`` (Kendall p < level, the significance level) and ``holm``
    (a deciding relation still significant after Holm within its scope).

    ``scopes`` maps a scope name to its points: a frame with ``unit`` and the outcomes.
    """
    by_task = difficulty.set_index("unit")
    rows = []
    for scope, frame in scopes.items():
        points = frame.set_index("unit")
        block = []
        for measure in MEASURES:
            x = by_task.loc[points.index, measure]
            for outcome in OUTCOMES:
                stats = relate(x.to_numpy(), points[outcome].to_numpy()).as_row()
                decides = (measure, outcome) not in HEADROOM
                block.append(
                    {"scope": scope, "measure": measure, "outcome": outcome, **stats}
                    | {"decides": decides}
                )
        family = [row[TEST_P] if row["decides"] else math.nan for row in block]
        for row, keep in zip(block, holm(family, level), strict=True):
            row["significant"] = bool(row[TEST_P] < level)
            row["holm"] = keep
        rows.extend(block)
    columns = ["scope", "measure", "outcome", "n", *STAT_KEYS, "decides", "significant", "holm"]
    return pd.DataFrame(rows, columns=columns)


def lookup(relations: pd.DataFrame, scope: str, measure: str, outcome: str) -> dict:
    """The row of ``relations`` for (scope, measure, outcome) as a dict."""
    hit = relations[
        (relations["scope"] == scope)
        & (relations["measure"] == measure)
        & (relations["outcome"] == outcome)
    ]
    if hit.empty:
        empty = {"n": 0, **dict.fromkeys(STAT_KEYS, math.nan)}
        return empty | {"decides": True, "significant": False, "holm": False}
    return hit.iloc[0].to_dict()
