"""Two things every study's report states beside task difficulty: the class-count confound
(Spearman of each measure with the number of classes over the study's tasks, and each
measure's rank correlation with the tasks' mean dID with the class count held fixed), and
each task's control tasks (where its CF is measured)."""

from __future__ import annotations

import pandas as pd

from clipgap.report.formats.blocks import Block, Heading, Paragraph, Table
from clipgap.report.formatting import MISSING, num
from clipgap.report.labels import MEASURE_NAMES, MEASURES
from clipgap.stats import partial_spearman, spearman


def confound_rows(difficulty: pd.DataFrame, means: pd.DataFrame | None) -> list[dict]:
    """Per measure: ρ(measure, classes) over the tasks of ``difficulty``; ρ(measure, dID) and
    the partial ρ given classes over the tasks of ``means`` (a task's dID = the mean over the
    paper's five methods; NaN without them)."""
    rows = []
    for m in MEASURES:
        row = {"measure": m, "rho_classes": spearman(difficulty[m], difficulty["n_classes"])}
        if means is not None and len(means):
            x, y, c = means[m], means["delta_id"], means["n_classes"]
            row |= {"rho_did": spearman(x, y), "partial": partial_spearman(x, y, c)}
        else:
            row |= {"rho_did": float("nan"), "partial": float("nan")}
        rows.append(row)
    return rows


def confound_section(difficulty: pd.DataFrame, means: pd.DataFrame | None) -> list[Block]:
    rows = confound_rows(difficulty, means)
    ss = rows[0]["rho_classes"]
    head = ["measure", "ρ with classes", "ρ with dID", "ρ with dID, classes fixed"]
    cells = [
        [MEASURE_NAMES[r["measure"]]]
        + [num(r[k], 2, signed=True) for k in ("rho_classes", "rho_did", "partial")]
        for r in rows
    ]
    return [
        Heading("Class count", 3),
        Paragraph(
            f"Confound: Spearman(ss (modality), number of classes) = {num(ss, 2, signed=True)} "
            f"over the {len(difficulty)} tasks. A measure that tracks the class count can "
            "seem to predict the outcomes through it alone; the last column is each measure's "
            "Spearman ρ with the tasks' mean dID (paper methods) with the class count held "
            "fixed (partial rank correlation)."
        ),
        Table(head, cells),
    ]


def controls_section(records) -> list[Block]:
    """Per task: the control tasks its runs measured forgetting on."""
    panels: dict[str, set[str]] = {}
    for rec in records:
        mine = panels.setdefault(rec.task, set())
        mine.update(rec.config.get("controls") or [])
        if rec.outcomes is not None:  # what the run measured, where the config names none
            mine.update(rec.outcomes.cf_per_control)
    rows = [
        [f"`{t}`", ", ".join(f"`{c}`" for c in sorted(cs)) or MISSING]
        for t, cs in sorted(panels.items())
    ]
    return [
        Heading("Control tasks", 3),
        Paragraph("Each task's CF is the mean change of accuracy on these tasks, not trained on."),
        Table(["task", "controls"], rows),
    ]
