"""Which runs enter which statistic.

Claims use exactly the paper's five methods (``PAPER_METHODS``) of one preset at a time, run on
all training images (``shots`` = all); a study with several presets is judged once per preset
(a *claim group*). Other arms (the linear probe, other methods, limited-data runs) appear in
tables and figures, marked ``†``, never in a claim. A group's *task means* average each
outcome over its five methods, on the tasks where all five have complete runs.
"""

from __future__ import annotations

import pandas as pd

from clipgap.record import PAPER_METHODS
from clipgap.report.labels import OUTCOMES, in_claims, order_arms, split_arm

PAPER_SCOPE = "paper methods"


def claim_groups(cells: pd.DataFrame) -> dict[str, dict[str, str]]:
    """``{group: {paper method: arm}}`` over the arms that may enter claims; the group is the
    preset when the study has several, else ``""``. Always at least one (maybe empty) group."""
    groups: dict[str, dict[str, str]] = {}
    for arm in order_arms(cells["arm"]):
        if in_claims(arm):
            method, preset, _ = split_arm(arm)
            groups.setdefault(preset, {})[method] = arm
    return dict(sorted(groups.items())) or {"": {}}


def scope_name(group: str) -> str:
    """The relations scope of a claim group: ``paper methods`` or ``paper methods [paper]``."""
    return f"{PAPER_SCOPE} [{group}]" if group else PAPER_SCOPE


def missing_methods(arms: dict[str, str]) -> list[str]:
    """The paper methods a claim group has no complete run of, in the paper's order."""
    return [m for m in PAPER_METHODS if m not in arms]


def paper_means(
    cells: pd.DataFrame, difficulty: pd.DataFrame, arms: dict[str, str]
) -> pd.DataFrame:
    """Per task with all five paper methods of a group: its difficulty and each outcome
    averaged over the five methods' seed means (NaN when any of the five lacks it).

    The unit of claims 1 and 2: one point per task. Empty when the group lacks a method.
    """
    columns = ["unit", *difficulty.columns.drop("unit"), *OUTCOMES]
    if missing_methods(arms):
        return pd.DataFrame(columns=columns)
    mine = cells[cells["arm"].isin(arms.values())]
    counts = mine.groupby("unit")["arm"].nunique()
    common = counts[counts == len(PAPER_METHODS)].index
    mine = mine[mine["unit"].isin(common)]
    means = mine.groupby("unit", sort=True)[list(OUTCOMES)].agg(lambda s: s.mean(skipna=False))
    return difficulty.set_index("unit").join(means, how="inner").reset_index()[columns]


def shots_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Per (arm without shots, shots, outcome): the mean over tasks of the per-task seed means
    and the number of tasks. Empty when no run limited its training images."""
    columns = ["base", "shots", "outcome", "mean", "n_tasks"]
    if (cells["shots"] == "all").all():
        return pd.DataFrame(columns=columns)
    rows = []
    for arm, mine in cells.groupby("arm", sort=False):
        base = arm.partition("@")[0]
        for outcome in OUTCOMES:
            values = mine[outcome].dropna()
            mean = float(values.mean()) if len(values) else float("nan")
            rows.append([base, mine["shots"].iloc[0], outcome, mean, len(values)])
    return pd.DataFrame(rows, columns=columns)
