"""The report's content, section by section, as blocks (:mod:`.blocks`)."""

from __future__ import annotations

import math

import pandas as pd

from clipgap.report.analysis import Analysis
from clipgap.report.formatting import MISSING, integer, mean_pm, num, pval
from clipgap.report.labels import (
    MEASURE_NAMES,
    MEASURES,
    OUTCOME_NAMES,
    OUTCOMES,
    method_label,
    order_arms,
)
from clipgap.report.relations import POOLED, TEST_P
from clipgap.report.render.blocks import Block, Bullets, Heading, Image, Paragraph, Table, Verdict
from clipgap.report.render.plots import Plot
from clipgap.report.study import Study
from clipgap.report.tables import complete_rows, task_method_table

READING = (
    "Accuracies are top-1 fractions in [0, 1]. **dID** = fine-tuned − zero-shot accuracy on the "
    "task's test split; **dDG** = the same, averaged over the task's shifted domains; **CF** = "
    "the same on control tasks not trained on, averaged over them (negative = forgetting). "
    "± is the standard deviation over seeds; statistics use only complete runs."
)


def document(study: Study, analysis: Analysis, plots: list[Plot], *, figures: str) -> list[Block]:
    """All blocks of the report, in order."""
    blocks: list[Block] = [Heading(f"clipgap study report: {study.name}", 1)]
    blocks += header(study, analysis.frame)
    blocks += [Paragraph(READING), Heading("Claims")]
    blocks += [Verdict(c.key, c.statement, c.status, c.evidence) for c in analysis.claims]
    blocks += difficulty_section(analysis.difficulty)
    blocks += method_section(analysis.methods, analysis.cells)
    blocks += statistics_section(analysis.relations, analysis.alpha)
    blocks.append(Heading("Figures"))
    blocks += [Image(f"{figures}/{p.name}", p.title, p.caption) for p in plots]
    if not plots:
        blocks.append(Paragraph("No figure: no complete run."))
    blocks += failed_section(study)
    return blocks


def _listing(values) -> str:
    values = sorted({str(v) for v in values if isinstance(v, str) or not pd.isna(v)})
    return ", ".join(f"`{v}`" for v in values) if values else MISSING


def header(study: Study, frame: pd.DataFrame) -> list[Block]:
    """Model, tasks, methods, seeds (of complete runs), run counts, versions, devices, time."""
    done = complete_rows(frame)
    version_cols = sorted(c for c in frame.columns if c.startswith("version_"))
    versions = "; ".join(
        f"{c.removeprefix('version_')} {', '.join(sorted(done[c].dropna().astype(str).unique()))}"
        for c in version_cols
    )
    seconds = done["seconds"].dropna()
    methods = order_arms(done["method"])
    seeds = sorted(done["seed"].unique())
    items = [
        f"Model: {_listing(frame['model'])}",
        f"Tasks with complete runs ({done['task'].nunique()}): {_listing(done['task'])}",
        f"Methods with complete runs ({len(methods)}): "
        + (", ".join(method_label(m) for m in methods) or MISSING),
        f"Seeds of complete runs ({len(seeds)}): {', '.join(str(s) for s in seeds) or MISSING}",
        f"Presets: {_listing(frame['preset'])}",
        f"Runs: {len(study.complete)} complete, {len(study.failed)} failed, "
        f"{len(study.unfinished)} unfinished (no `DONE`, not included)",
        f"Versions: {versions or MISSING}",
        f"Devices: {_listing(done['device'])}",
        f"Fine-tuning time: {num(seconds.sum(), 0)} s over {len(seconds)} complete runs",
    ]
    return [Bullets(items)]


def difficulty_section(difficulty: pd.DataFrame) -> list[Block]:
    columns = ["silhouette_modality", "silhouette_class", "acs", "zero_shot_accuracy"]
    rows = [
        [f"`{r['unit']}`", integer(r["n_images"]), integer(r["n_classes"])]
        + [num(r[c]) for c in columns]
        + [num(r["modality_gap"])]
        for r in difficulty.to_dict("records")
    ]
    head = ["task", "images", "classes", *(MEASURE_NAMES[c] for c in columns), "modality gap"]
    return [
        Heading("Task difficulty"),
        Paragraph(
            "Measured on the zero-shot embeddings of each task's test split. High ss = image "
            "and text embeddings far apart (a misaligned, harder task); high ACS or zero-shot "
            "accuracy = an aligned, easier task."
        ),
        Table(head, rows),
    ]


def method_section(methods: pd.DataFrame, cells: pd.DataFrame) -> list[Block]:
    head = ["method", "tasks", "runs", "trainable params", "dID", "dDG", "CF", "s / run"]
    rows = []
    for r in methods.to_dict("records"):
        lo, hi = r["params_min"], r["params_max"]
        params = integer(lo) if lo == hi else f"{integer(lo)}–{integer(hi)}"
        outcomes = [mean_pm(r[o], r[f"{o}_std"]) for o in OUTCOMES]
        seconds = num(r["seconds"], 1)
        rows.append([method_label(r["arm"]), str(r["n_tasks"]), str(r["n_runs"]), params])
        rows[-1] += [*outcomes, seconds]
    blocks: list[Block] = [
        Heading("Methods"),
        Paragraph(
            "Each outcome is the mean over tasks of the per-task mean over seeds; ± is the "
            "pooled seed standard deviation (root mean over tasks of the per-task seed variance)."
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
    rows.append(["**mean over tasks**"] + [num(means[a].mean(), signed=True) for a in arms])
    name = OUTCOME_NAMES[outcome]
    return [
        Heading(f"{name} per task and method", 3),
        Table(["task", *(method_label(a) for a in arms)], rows),
    ]


STAT_HEAD = ["n", "Pearson r", "p", "Spearman ρ", "p", "Kendall τ", "p", "slope", "R²", "sig."]


def _stat_cells(r: dict) -> list[str]:
    sig = MISSING if not math.isfinite(r[TEST_P]) else "no"
    if r["significant"]:
        sig = "yes (Holm)" if r["holm"] else "yes"
    return [
        str(int(r["n"])),
        num(r["pearson_r"], 2, signed=True),
        pval(r["pearson_p"]),
        num(r["spearman_rho"], 2, signed=True),
        pval(r["spearman_p"]),
        num(r["kendall_tau"], 2, signed=True),
        pval(r["kendall_p"]),
        num(r["slope"], 3, signed=True),
        num(r["r2"], 2),
        sig,
    ]


def statistics_section(relations: pd.DataFrame, alpha: float) -> list[Block]:
    def label(r: dict) -> list[str]:
        return [MEASURE_NAMES[r["measure"]], OUTCOME_NAMES[r["outcome"]]]

    pooled = relations[relations["scope"] == POOLED].to_dict("records")
    per_method = relations[relations["scope"] != POOLED].to_dict("records")
    return [
        Heading("Difficulty vs outcomes: statistics"),
        Paragraph(
            f"One point per task. **sig.**: Kendall τ p < {alpha:g} (two-sided, uncorrected; "
            "exact for few tasks without ties); *(Holm)*: still significant after Holm's "
            f"correction over the {len(MEASURES) * len(OUTCOMES)} relations of the same scope. "
            "Spearman's p is exact (all orderings) up to 9 tasks. "
            "— = undefined (too few tasks or a constant variable)."
        ),
        Heading("All methods (per-task mean over methods and seeds)", 3),
        Table(["measure", "outcome", *STAT_HEAD], [label(r) + _stat_cells(r) for r in pooled]),
        Heading("Per method (per-task mean over seeds)", 3),
        Table(
            ["method", "measure", "outcome", *STAT_HEAD],
            [[method_label(r["scope"]), *label(r), *_stat_cells(r)] for r in per_method],
            align=["l", "l", "l", *["r"] * len(STAT_HEAD)],
        ),
    ]


def failed_section(study: Study) -> list[Block]:
    blocks: list[Block] = [Heading("Failed runs")]
    if not study.failed:
        blocks.append(Paragraph("None."))
    else:
        rows = [
            [f"`{r.run_id}`", f"`{r.task}`", method_label(r.method), str(r.seed), r.error or ""]
            for r in study.failed
        ]
        blocks.append(Paragraph("Listed for reference; left out of every table and statistic."))
        blocks.append(Table(["run", "task", "method", "seed", "error"], rows, align=["l"] * 5))
    if study.unfinished:
        names = ", ".join(f"`{n}`" for n in study.unfinished)
        blocks.append(Paragraph(f"Run directories without `DONE` (skipped): {names}."))
    return blocks
