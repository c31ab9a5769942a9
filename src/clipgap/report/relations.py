"""Relating task difficulty to fine-tuning outcomes, one point per task.

For each scope (one method, or all methods averaged per task), each difficulty measure (ss,
ACS, zero-shot accuracy) and each outcome (dID, dDG, CF) this computes :func:`clipgap.stats.relate` over the
tasks: Pearson r, Spearman rho and Kendall tau with two-sided p-values, and a least-squares line
with R^2. Significance is Kendall's tau p < alpha (scipy computes it exactly for few tasks
without ties; Spearman's p is an exact permutation p-value up to 9 tasks). ``holm`` marks
the relations that stay significant after Holm's step-down correction within their scope (the
family of measure x outcome tests).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from clipgap.errors import MetricError
from clipgap.report.labels import MEASURES, OUTCOMES, order_arms
from clipgap.stats import MIN_POINTS, holm, relate

POOLED = "all methods"
STAT_KEYS = (
    "pearson_r",
    "pearson_p",
    "spearman_rho",
    "spearman_p",
    "kendall_tau",
    "kendall_p",
    "slope",
    "intercept",
    "r2",
)
# The p-value that decides significance (see the module docstring).
TEST_P = "kendall_p"


def safe_relate(x, y) -> dict:
    """``stats.relate`` over the pairs where both values are finite.

    With fewer than ``MIN_POINTS`` pairs, or when ``relate`` refuses the data (e.g. a constant
    variable), every statistic is nan and ``n`` is still the number of finite pairs.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    n = int(keep.sum())
    empty = {"n": n, **dict.fromkeys(STAT_KEYS, math.nan)}
    if n < MIN_POINTS or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return empty
    try:
        result = relate(x[keep], y[keep])
    except MetricError:
        return empty
    out = {"n": n}
    out.update({key: float(result[key]) for key in STAT_KEYS})
    return out


def relation_table(
    cells: pd.DataFrame, means: pd.DataFrame, difficulty: pd.DataFrame, *, alpha: float
) -> pd.DataFrame:
    """One row per (scope, measure, outcome): ``n`` tasks, the ``STAT_KEYS``, and booleans
    ``significant`` (Kendall p < alpha) and ``holm`` (significant after Holm within the scope).

    ``scope`` is a method (its per-task seed means) or ``POOLED`` (per-task means over methods).
    """
    by_task = difficulty.set_index("unit")
    scopes = [(POOLED, means.set_index("unit"))]
    for arm in order_arms(cells["arm"]):
        scopes.append((arm, cells[cells["arm"] == arm].set_index("unit")))
    rows = []
    for scope, points in scopes:
        block = []
        for measure in MEASURES:
            x = by_task.loc[points.index, measure]
            for outcome in OUTCOMES:
                stats = safe_relate(x.to_numpy(), points[outcome].to_numpy())
                block.append({"scope": scope, "measure": measure, "outcome": outcome, **stats})
        rejected = holm([row[TEST_P] for row in block], alpha)
        for row, keep in zip(block, rejected, strict=True):
            row["significant"] = bool(row[TEST_P] < alpha)
            row["holm"] = keep
        rows.extend(block)
    return pd.DataFrame(rows)


def lookup(relations: pd.DataFrame, scope: str, measure: str, outcome: str) -> dict:
    """The row of ``relations`` for (scope, measure, outcome) as a dict."""
    hit = relations[
        (relations["scope"] == scope)
        & (relations["measure"] == measure)
        & (relations["outcome"] == outcome)
    ]
    if hit.empty:
        return {"n": 0, **dict.fromkeys(STAT_KEYS, math.nan), "significant": False, "holm": False}
    return hit.iloc[0].to_dict()
