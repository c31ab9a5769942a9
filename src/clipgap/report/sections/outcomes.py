"""The outcome sections: per method (dID, dDG, CF with seed spread, trainable parameters, time),
per task and method, the absolute accuracies behind each outcome, and, in studies where some
run limited its training images (``shots``), the outcomes against training images per class.
"""

from __future__ import annotations

import pandas as pd

from clipgap.record import OUTCOME_LABELS
from clipgap.report.formats.blocks import Block, Heading, Paragraph, Table
from clipgap.report.formatting import integer, mean_pm, num
from clipgap.report.labels import OUTCOMES, method_label, order_arms, shots_key
from clipgap.report.tables import accuracy_table, task_method_table

# (column, header, signed): absolute accuracies, each group followed by its change.
ACCURACY_COLUMNS = (
    ("zs_id", "zero-shot ID", False),
    ("ft_id", "fine-tuned ID", False),
    ("delta_id", "dID", True),
    ("zs_dg_mean", "zero-shot DG", False),
    ("ft_dg_mean", "fine-tuned DG", False),
    ("delta_dg", "dDG", True),
    ("zs_control_mean", "zero-shot control", False),
    ("ft_control_mean", "fine-tuned control", False),
    ("cf", "CF", True),
)


EXTRAS = (
    "**†** marks an arm outside the claims (not one of the paper's five methods, or trained on "
    "fewer than all training images): shown for reference, never pooled into a claim."
)


def method_section(methods: pd.DataFrame, cells: pd.DataFrame) -> list[Block]:
    head = ["method", "tasks", "runs", "trainable params", "dID", "dDG", "CF", "s / run"]
    rows = []
    for r in methods.to_dict("records"):
        lo, hi = r["params_min"], r["params_max"]
        params = integer(lo) if lo == hi else f"{integer(lo)}–{integer(hi)}"
        outcomes = [mean_pm(r[o], r[f"{o}_std"]) for o in OUTCOMES]
        seconds = num(r["seconds"], 1)
        rows.append(
            [method_label(r["arm"], mark=True), str(r["n_tasks"]), str(r["n_runs"]), params]
        )
        rows[-1] += [*outcomes, seconds]
    blocks: list[Block] = [
        Heading("Methods"),
        Paragraph(
            "Each outcome is the mean over tasks of the per-task mean over seeds; ± is the "
            "pooled seed standard deviation over tasks (no ± with one seed: the spread is "
            "unknown). " + EXTRAS
        ),
        Table(head, rows),
    ]
    for outcome in OUTCOMES:
        blocks += _task_method_blocks(cells, outcome)
    return blocks


def _task_method_blocks(cells: pd.DataFrame, outcome: str) -> list[Block]:
    means = task_method_table(cells, outcome)
    if means.isna().all().all():
        return []
    stds = task_method_table(cells, f"{outcome}_std")
    arms = list(means.columns)
    rows = [
        [f"`{unit}`"] + [mean_pm(means.at[unit, a], stds.at[unit, a]) for a in arms]
        for unit in means.index
    ]
    foot = [["**mean over tasks**"] + [num(means[a].mean(), signed=True) for a in arms]]
    name = OUTCOME_LABELS[outcome]
    return [
        Heading(f"{name} per task and method", 3),
        Table(["task", *(method_label(a, mark=True) for a in arms)], rows, foot=foot),
    ]


def accuracy_section(frame: pd.DataFrame) -> list[Block]:
    """One row per (task, arm): top-1 accuracies before and after fine-tuning, mean over
    seeds, next to dID, dDG and CF."""
    table = accuracy_table(frame)
    if table.empty:
        return []
    rank = {arm: i for i, arm in enumerate(order_arms(table["arm"]))}
    table = table.sort_values(["unit", "arm"], key=lambda s: s.map(rank) if s.name == "arm" else s)
    rows = [
        [f"`{r['unit']}`", method_label(r["arm"], mark=True), str(r["n_seeds"])]
        + [num(r[column], signed=signed) for column, _, signed in ACCURACY_COLUMNS]
        for r in table.to_dict("records")
    ]
    head = ["task", "method", "seeds", *(name for _, name, _ in ACCURACY_COLUMNS)]
    return [
        Heading("Accuracies per task and method", 3),
        Paragraph(
            "Top-1 accuracy, mean over seeds, before (zero-shot) and after fine-tuning: on the "
            "task's test split (ID), averaged over its shifted domains (DG) and over the control "
            "tasks (control), each followed by its change. In `report.html` a click on a column "
            "header sorts a table."
        ),
        Table(head, rows, align=["l", "l"] + ["r"] * (len(head) - 2)),
    ]


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
            Heading(f"{OUTCOME_LABELS[outcome]} against shots", 3),
            Table(["method", *(f"k = {k}" for k in values)], rows),
        ]
    return blocks


def _cell(row: pd.Series) -> str:
    if not row["n_tasks"]:
        return "—"
    return f"{num(row['mean'], signed=True)} ({int(row['n_tasks'])})"
