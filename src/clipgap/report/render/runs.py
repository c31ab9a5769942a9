"""Per-run sections: absolute accuracies next to the outcomes per (task, method), and the
hyperparameters of every finished run."""

from __future__ import annotations

import pandas as pd

from clipgap.record import RunRecord
from clipgap.report.formatting import MISSING, integer, num
from clipgap.report.labels import method_label, order_arms, shots_text
from clipgap.report.render.blocks import Block, Heading, Paragraph, Table
from clipgap.report.study import Study
from clipgap.report.tables import accuracy_table

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
# (key of the run's training config, header)
HYPERPARAMETERS = (("optimizer", "optimizer"), ("lr", "lr"), ("batch_size", "batch"))


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


def runs_section(study: Study) -> list[Block]:
    """The hyperparameters of every finished run, from its resolved training config."""
    head = [
        "run", "task", "method", "seed", "preset", "shots", "status", "optimizer", "lr", "batch",
        "epochs", "best epoch", "val accuracy (start → best)",
    ]  # fmt: skip
    rank = {method: i for i, method in enumerate(order_arms(r.method for r in study.records))}
    records = sorted(study.records, key=lambda r: (r.task, rank[r.method], r.seed, r.run_id))
    rows = [_run_row(rec) for rec in records]
    return [
        Heading("Runs and hyperparameters"),
        Paragraph(
            "Every finished run, with the training settings of its resolved config "
            f"(`config.train`; {MISSING} = not recorded). The best epoch is the trained epoch "
            "chosen on validation accuracy; the last column shows the validation accuracy of "
            "the starting model and of the best epoch."
        ),
        Table(head, rows, align=["l"] * 3 + ["r"] + ["l"] * 4 + ["r"] * 5),
    ]


def _run_row(rec: RunRecord) -> list[str]:
    train = rec.config.get("train") if isinstance(rec.config, dict) else None
    train = train if isinstance(train, dict) else {}
    settings = [_setting(train.get(key)) for key, _ in HYPERPARAMETERS]
    val = f"{num(rec.val_accuracy_start)} → {num(rec.val_accuracy)}" if rec.complete else MISSING
    return [
        f"`{rec.run_id}`",
        f"`{rec.task}`",
        method_label(rec.method),
        str(rec.seed),
        rec.preset,
        shots_text(rec.shots),
        rec.status,
        *settings,
        _setting(train.get("epochs")),
        integer(rec.best_epoch),
        val,
    ]


def _setting(value) -> str:
    """A config value as written: numbers in their shortest form (``0.0003``, ``1e-06``)."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)
