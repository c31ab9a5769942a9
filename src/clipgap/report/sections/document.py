"""The report as a document: every section in order (:func:`document`), the header (model,
tasks, methods, seeds, runs, versions, devices, time) and what the claims use and mean. The
sections themselves live beside this module, one per subject.
"""

from __future__ import annotations

import pandas as pd

from clipgap.report.analysis import Analysis
from clipgap.report.figures.canvas import Plot
from clipgap.report.formats.blocks import Block, Bullets, Heading, Image, Paragraph, Verdict
from clipgap.report.formatting import MISSING, num
from clipgap.report.labels import method_label, order_arms
from clipgap.report.sections.confound import confound_section, controls_section
from clipgap.report.sections.difficulty import difficulty_section, statistics_section
from clipgap.report.sections.interpolation import frontier_section
from clipgap.report.sections.outcomes import accuracy_section, method_section, shots_section
from clipgap.report.sections.predictors import measures_section
from clipgap.report.sections.runs import failed_section, runs_section
from clipgap.report.sections.search import search_section
from clipgap.report.study import Study
from clipgap.report.tables import complete_rows
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


def document(study: Study, analysis: Analysis, plots: list[Plot], *, figures: str) -> list[Block]:
    """All blocks of the report, in order."""
    blocks: list[Block] = [Heading(f"clipgap study report: {study.name}", 1)]
    blocks += header(study, analysis.frame)
    blocks += [Paragraph(READING), Heading("Claims"), Paragraph(claims_scope(analysis))]
    blocks += [Verdict(c.key, c.statement, c.status, c.evidence) for c in analysis.claims]
    blocks += difficulty_section(analysis.difficulty)
    blocks += confound_section(analysis.difficulty, _paper_means(analysis))
    blocks += controls_section(study.records)
    blocks += method_section(analysis.methods, analysis.cells)
    blocks += accuracy_section(analysis.frame)
    blocks += shots_section(analysis.shots)
    blocks += statistics_section(analysis.relations, analysis.level)
    blocks += measures_section(analysis.measures)
    blocks += frontier_section(analysis.frontier, analysis.claims)
    blocks += search_section(analysis.trials)
    blocks.append(Heading("Figures"))
    blocks += [Image(f"{figures}/{p.name}", p.title, p.caption) for p in plots]
    if not plots:
        blocks.append(Paragraph("No figure: no complete run."))
    blocks += runs_section(study)
    blocks += failed_section(study)
    return blocks


def _paper_means(analysis: Analysis):
    """The per-task paper-method means of the first claim group (None: none)."""
    return next((m for m in analysis.means.values() if len(m)), None)


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
    level = analysis.level
    presets = [g for g in analysis.groups if g]
    per = f" of one preset at a time ({', '.join(presets)})" if presets else ""
    return (
        "Claims use exactly the paper's five methods (full, A-CLIP, BitFit, LoRA, CLIP-Adapter)"
        f"{per}, on runs with all training images (shots = all) and on the tasks where all "
        "five have complete runs; other methods and limited-data runs are shown in the tables "
        "and figures, never pooled into a claim. A verdict is **holds** (the test supports the "
        "claim), **does not hold** (the test supports the opposite), **not significant** (the "
        f"test cannot tell at α = {level:g}) or **cannot be tested** (too few tasks, or a "
        "missing method, DG domain or control task). Claim 1 is decided by a "
        f"{100 * (1 - level):g}% bootstrap interval over tasks on |ρ(ss, dID)| − |ρ(ACS, dID)|; "
        "claim 2 by Kendall's τ with Holm's correction; claim 3's rank and sign statements by "
        "Wilcoxon signed-rank tests paired by task (tasks are the replicates; seed spread is "
        f"never used as noise), which need at least {signed_rank_min_n(level)} tasks: with n "
        "tasks the smallest possible two-sided p is 2/2^n."
    )
