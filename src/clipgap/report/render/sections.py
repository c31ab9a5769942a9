"""The report's content, section by section, as blocks (:mod:`.blocks`)."""

from __future__ import annotations

import pandas as pd

from clipgap.report.analysis import Analysis
from clipgap.report.formatting import MISSING, integer, mean_pm, num
from clipgap.report.labels import MEASURE_NAMES, OUTCOME_NAMES, OUTCOMES, method_label, order_arms
from clipgap.report.render.blocks import Block, Bullets, Heading, Image, Paragraph, Table, Verdict
from clipgap.report.render.frontier import frontier_section
from clipgap.report.render.measures import measures_section
from clipgap.report.render.plots import Plot
from clipgap.report.render.runs import accuracy_section, runs_section
from clipgap.report.render.shots import shots_section
from clipgap.report.render.statistics import statistics_section
from clipgap.report.study import Study
from clipgap.report.tables import complete_rows, task_method_table
from clipgap.stats import signed_rank_min_n

READING = (
    "Accuracies are top-1 fractions in [0, 1]. **dID** = fine-tuned − zero-shot accuracy on the "
    "task's test split; **dDG** = the same, averaged over the task's shifted domains; **CF** = "
    "the same on control tasks not trained on, averaged over them (negative = forgetting). "
    "± is the standard deviation over seeds; statistics use only complete runs."
)
DATA_FILES = (
    "Data: [results.csv](results.csv) (one row per finished run), "
    "[results_long.csv](results_long.csv) and [results_long.parquet](results_long.parquet) "
    "(one row per complete run x metric x dataset)"
)
EXTRAS = (
    "**†** marks an arm outside the claims (not one of the paper's five methods, or trained on "
    "fewer than all training images): shown for reference, never pooled into a claim."
)


def document(study: Study, analysis: Analysis, plots: list[Plot], *, figures: str) -> list[Block]:
    """All blocks of the report, in order."""
    blocks: list[Block] = [Heading(f"clipgap study report: {study.name}", 1)]
    blocks += header(study, analysis.frame)
    blocks += [Paragraph(READING), Heading("Claims"), Paragraph(claims_scope(analysis))]
    blocks += [Verdict(c.key, c.statement, c.status, c.evidence) for c in analysis.claims]
    blocks += difficulty_section(analysis.difficulty)
    blocks += method_section(analysis.methods, analysis.cells)
    blocks += accuracy_section(analysis.frame)
    blocks += shots_section(analysis.shots)
    blocks += statistics_section(analysis.relations, analysis.alpha)
    blocks += measures_section(analysis.measures)
    blocks += frontier_section(analysis.frontier, analysis.claims)
    blocks.append(Heading("Figures"))
    blocks += [Image(f"{figures}/{p.name}", p.title, p.caption) for p in plots]
    if not plots:
        blocks.append(Paragraph("No figure: no complete run."))
    blocks += runs_section(study)
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
        DATA_FILES,
    ]
    return [Bullets(items)]


def claims_scope(analysis: Analysis) -> str:
    """Which runs the claims use, and what a verdict means."""
    alpha = analysis.alpha
    presets = [g for g in analysis.groups if g]
    per = f" of one preset at a time ({', '.join(presets)})" if presets else ""
    return (
        "Claims use exactly the paper's five methods (full, A-CLIP, BitFit, LoRA, CLIP-Adapter)"
        f"{per}, on runs with all training images (shots = all) and on the tasks where all "
        "five have complete runs; other methods and limited-data runs are shown in the tables "
        "and figures, never pooled into a claim. A verdict is **holds** (the test supports the "
        "claim), **does not hold** (the test supports the opposite), **not significant** (the "
        f"test cannot tell at α = {alpha:g}) or **cannot be tested** (too few tasks, or a "
        "missing method, DG domain or control task). Claim 1 is decided by a "
        f"{100 * (1 - alpha):g}% bootstrap interval over tasks on |ρ(ss, dID)| − |ρ(ACS, dID)|; "
        "claim 2 by Kendall's τ with Holm's correction; claim 3's rank and sign statements by "
        "Wilcoxon signed-rank tests paired by task (tasks are the replicates; seed spread is "
        f"never used as noise), which need at least {signed_rank_min_n(alpha)} tasks: with n "
        "tasks the smallest possible two-sided p is 2/2^n."
    )


def difficulty_section(difficulty: pd.DataFrame) -> list[Block]:
    columns = ["silhouette_modality", "silhouette_class", "acs", "zero_shot_accuracy"]
    rows = [
        [f"`{r['unit']}`", integer(r["n_images"]), integer(r["n_classes"])]
        + [num(r[c]) for c in columns]
        + [num(r["modality_gap"])]
        for r in difficulty.to_dict("records")
    ]
    head = ["task", "images", "classes", *(MEASURE_NAMES[c] for c in columns), "modality gap"]
    splits = sorted({s for cell in difficulty["split"] for s in cell.split(", ") if s})
    if len(splits) == 1:
        where = f"each task's {splits[0]} split"
    else:
        where = "the split named in the last column"
        head.append("split")
        for row, split in zip(rows, difficulty["split"], strict=True):
            row.append(split)
    return [
        Heading("Task difficulty"),
        Paragraph(
            f"Measured on the zero-shot embeddings of {where} (`difficulty.split`); dID is "
            "always measured on the test split. High ss = image and text embeddings far apart "
            "(a misaligned, harder task); high ACS or zero-shot accuracy = an aligned, easier "
            "task."
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
    name = OUTCOME_NAMES[outcome]
    return [
        Heading(f"{name} per task and method", 3),
        Table(["task", *(method_label(a, mark=True) for a in arms)], rows, foot=foot),
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
