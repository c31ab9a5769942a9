"""The search section (studies with a ``search:`` only): the budget every method got and the
trial selected per task x method x seed, with the settings drawn for it."""

from __future__ import annotations

import pandas as pd

from clipgap.report.formats.blocks import Block, Heading, Paragraph, Table
from clipgap.report.formatting import num
from clipgap.report.labels import method_label, order_arms
from clipgap.report.trials import method_choice, settings_text


def search_section(trials: pd.DataFrame | None) -> list[Block]:
    """Nothing without a search; else the protocol, the budget per method and one row per
    task x method (x seed, when several) with the selected trial."""
    if trials is None or trials.empty:
        return []
    several_seeds = trials["seed"].nunique() > 1
    rank = {arm: i for i, arm in enumerate(order_arms(trials["arm"]))}
    rows = []
    groups = trials.groupby(["unit", "arm", "seed"], sort=False)
    for (unit, arm, seed), group in sorted(groups, key=lambda g: (g[0][0], rank[g[0][1]], g[0][2])):
        chosen = group[group["selected"]]
        row = [f"`{unit}`", method_label(arm, mark=True)] + ([str(seed)] if several_seeds else [])
        if chosen.empty:
            rows.append(row + [str(len(group)), "—", "none (no validation accuracy)", "—", "—"])
            continue
        best = chosen.iloc[0]
        rows.append(row + [
            str(len(group)), str(int(best["trial"])), settings_text(best["values"]),
            num(best["val_accuracy"]), num(best["delta_id"], signed=True),
        ])  # fmt: skip
    head = ["task", "method", *(["seed"] if several_seeds else []), "trials", "selected",
            "settings", "val accuracy", "dID"]  # fmt: skip
    return [
        Heading("Search: selected settings"),
        Paragraph(
            "Every method got the same budget: " + _budget(trials) + ". Trials are drawn "
            "reproducibly from each method's own search space; per task x method x seed the "
            "trial with the best validation accuracy (the trainer's hold-out of the train "
            "split, never test data) is selected, ties to the lower trial index. Claims, tables "
            "and the other figures use the selected trials only; `results.csv` lists every "
            "trial (columns `trial`, `val_accuracy`, `selected`)."
        ),
        Table(head, rows, align=["l", "l"] + ["r"] * (len(head) - 5) + ["l", "r", "r"]),
        *_choice_blocks(trials),
    ]


def _choice_blocks(trials: pd.DataFrame) -> list[Block]:
    """Per method, the trial with the best mean validation accuracy over tasks (a preset's
    choice: one setting per method for every task)."""
    choice = method_choice(trials)
    rank = {arm: i for i, arm in enumerate(order_arms(choice["arm"]))}
    rows = [
        [method_label(r["arm"], mark=True), str(r["trial"]), settings_text(r["values"]),
         num(r["val_accuracy"]), str(r["runs"])]
        for r in sorted(choice.to_dict("records"), key=lambda r: rank[r["arm"]])
    ]  # fmt: skip
    return [
        Heading("One setting per method", 3),
        Paragraph(
            "A trial has the same settings on every task: per method, the trial with the best "
            "validation accuracy averaged over the tasks (and seeds) it ran on, ties to the "
            "lower trial index; what a preset takes from a search."
        ),
        Table(
            ["method", "trial", "settings", "mean val accuracy", "runs"],
            rows,
            align=["l", "r", "l", "r", "r"],
        ),  # fmt: skip
    ]


def _budget(trials: pd.DataFrame) -> str:
    """``full 3 trials x 2 tasks, LoRA 3 trials x 2 tasks`` (complete trial runs counted)."""
    parts = []
    for arm in order_arms(trials["arm"]):
        mine = trials[trials["arm"] == arm]
        per_task = mine.groupby(["unit", "seed"]).size()
        k = (
            f"{per_task.min()}"
            if per_task.min() == per_task.max()
            else "–".join(str(v) for v in (per_task.min(), per_task.max()))
        )
        parts.append(f"{method_label(arm)} {k} trials x {mine['unit'].nunique()} tasks")
    return ", ".join(parts)
