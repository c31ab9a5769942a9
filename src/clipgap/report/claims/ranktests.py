"""Paired tests across tasks behind claim 3's rank and sign statements.

Tasks are the replicates: each method's value on a task is its mean over seeds, and methods
are compared task by task with the Wilcoxon signed-rank test (two-sided,
:func:`clipgap.stats.signed_rank_test`). Seed spread is never used as noise: with one seed it
is unknown, not zero.

- "X is best of the five" holds when X beats each of the other four, each at p < level (an
  intersection-union test: every comparison must reject, so no correction is needed). "X is in
  the top k" holds when X beats all but k - 1 of them. It does not hold when at least k
  methods beat X significantly after Holm's correction at ``refute_level``.
- "the mean of X is negative" (or positive) holds when the signed-rank test against 0 gives
  p < level in that direction, and does not hold when p < ``refute_level`` the other way.
- Fewer tasks than :func:`clipgap.stats.signed_rank_min_n` (6 at level 0.05): the
  statement cannot be tested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from clipgap.report.claims.verdict import Status, too_few
from clipgap.report.formatting import num, pval
from clipgap.report.labels import method_label
from clipgap.stats import holm, signed_rank_min_n, signed_rank_test


@dataclass(frozen=True)
class Part:
    """One tested statement of a claim: its status and a sentence with the numbers."""

    status: Status
    text: str


def compare_to_others(
    table: pd.DataFrame,
    target: str,
    *,
    what: str,
    higher: bool = True,
    top: int = 1,
    level: float,
    refute_level: float,
) -> Part:
    """Is ``target`` (a column of ``table``, rows = tasks) among the ``top`` best columns?"""
    table = table.dropna()
    needed = signed_rank_min_n(level)
    if len(table) < needed:
        return Part(Status.CANNOT_BE_TESTED, f"{what}: {too_few(len(table), needed)}")
    others = [m for m in table.columns if m != target]
    sign = 1 if higher else -1
    tests = {m: signed_rank_test(sign * (table[target] - table[m])) for m in others}
    wins = [m for m in others if tests[m]["pvalue"] < level and tests[m]["direction"] > 0]
    rejected = holm([tests[m]["pvalue"] for m in others], refute_level)
    losses = [m for m, r in zip(others, rejected, strict=True) if r and tests[m]["direction"] < 0]
    if len(wins) >= len(others) - (top - 1):
        status = Status.HOLDS
    elif len(losses) >= top:
        status = Status.DOES_NOT_HOLD
    else:
        status = Status.NOT_SIGNIFICANT
    parts = [
        f"vs {method_label(m)} {num(tests[m]['mean'], signed=True)} "
        f"(p = {pval(tests[m]['pvalue'])})"
        for m in others
    ]
    name = method_label(target)
    # the tested (and printed) difference is target - other, or other - target when lower is
    # better; either way + = target better
    order = f"{name} minus each other method" if higher else f"each other method minus {name}"
    text = (
        f"{what}, {order} over {len(table)} tasks (+ = {name} better; "
        f"Wilcoxon signed-rank p): {'; '.join(parts)}. {name} is better than {len(wins)} of "
        f"{len(others)} at p < {level:g}; {len(losses)} significantly better than {name} "
        f"(Holm at {refute_level:.3g})."
    )
    return Part(status, text)


def sign_of(
    values: pd.Series, *, expected: int, what: str, level: float, refute_level: float
) -> Part:
    """Is the centre of ``values`` (one per task) of sign ``expected`` (+1 or -1)?"""
    values = values.dropna()
    needed = signed_rank_min_n(level)
    if len(values) < needed:
        return Part(Status.CANNOT_BE_TESTED, f"{what}: {too_few(len(values), needed)}")
    test = signed_rank_test(values)
    p, direction = test["pvalue"], test["direction"]
    if p < level and direction == expected:
        status = Status.HOLDS
    elif p < refute_level and direction == -expected:
        status = Status.DOES_NOT_HOLD
    else:
        status = Status.NOT_SIGNIFICANT
    side = {1: "positive", -1: "negative", 0: "balanced"}[direction]
    sig = f"significantly {side}" if math.isfinite(p) and p < level else "not significant"
    return Part(
        status,
        f"{what}: mean {num(test['mean'], signed=True)} over {len(values)} tasks, "
        f"Wilcoxon signed-rank vs 0 p = {pval(p)} ({sig}).",
    )
