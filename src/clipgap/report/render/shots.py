"""The limited-data section: dID, dDG and CF against training images per class, per method.

Only studies in which some run limited its training images (``shots``) have it.
"""

from __future__ import annotations

import pandas as pd

from clipgap.report.formatting import num
from clipgap.report.labels import OUTCOME_NAMES, OUTCOMES, method_label, order_arms, shots_key
from clipgap.report.render.blocks import Block, Heading, Paragraph, Table


def shots_section(shots: pd.DataFrame) -> list[Block]:
    """One table per outcome: rows = methods, columns = shots (k images per class, ``all``)."""
    if shots.empty:
        return []
    values = sorted(shots["shots"].unique(), key=shots_key)
    blocks: list[Block] = [
        Heading("Limited data"),
        Paragraph(
            "Each cell: the mean over tasks of the per-task seed mean, for runs trained on k "
            "images per class (sampled with the run's seed from the training portion; `all` = "
            "the full split), with the number of tasks in brackets. Claims use only `all`."
        ),
    ]
    for outcome in OUTCOMES:
        mine = shots[shots["outcome"] == outcome]
        if mine["mean"].isna().all():
            continue
        rows = []
        for base in order_arms(mine["base"]):
            row = [method_label(base)]
            for k in values:
                hit = mine[(mine["base"] == base) & (mine["shots"] == k)]
                cell = "—" if hit.empty else _cell(hit.iloc[0])
                row.append(cell)
            rows.append(row)
        blocks += [
            Heading(f"{OUTCOME_NAMES[outcome]} against shots", 3),
            Table(["method", *(f"k = {k}" for k in values)], rows),
        ]
    return blocks


def _cell(row: pd.Series) -> str:
    if not row["n_tasks"]:
        return "—"
    return f"{num(row['mean'], signed=True)} ({int(row['n_tasks'])})"
