"""The difficulty sections: each task's difficulty measures on its zero-shot embeddings, and the
statistics of difficulty against the outcomes, per claim scope and per method."""

from __future__ import annotations

import math

import pandas as pd

from clipgap.record import OUTCOME_LABELS
from clipgap.report.formats.blocks import Block, Heading, Paragraph, Table
from clipgap.report.formatting import MISSING, integer, num, pval
from clipgap.report.labels import MEASURE_NAMES, MEASURES, OUTCOMES, method_label
from clipgap.report.relations import TEST_P
from clipgap.report.scopes import PAPER_SCOPE


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


STAT_HEAD = ["n", "Pearson r", "p", "Spearman ρ", "p", "Kendall τ", "p", "slope", "R²", "sig."]


def _stat_cells(r: dict) -> list[str]:
    sig = MISSING if not math.isfinite(r[TEST_P]) else "no"
    if r["significant"]:
        sig = "yes (Holm)" if r["holm"] else "yes"
    if not r["decides"] and math.isfinite(r[TEST_P]):
        sig += " (headroom)"
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


def statistics_section(relations: pd.DataFrame, level: float) -> list[Block]:
    def label(r: dict) -> list[str]:
        return [MEASURE_NAMES[r["measure"]], OUTCOME_LABELS[r["outcome"]]]

    family = len(MEASURES) * len(OUTCOMES) - 1
    blocks: list[Block] = [
        Heading("Difficulty vs outcomes: statistics"),
        Paragraph(
            f"One point per task. **sig.**: Kendall τ p < {level:g} (two-sided, uncorrected; "
            "exact for few tasks without ties); *(Holm)*: still significant after Holm's "
            f"correction over the {family} deciding relations of the same scope; *(headroom)*: "
            "zero-shot accuracy vs dID, partly an artefact of dID = fine-tuned − zero-shot "
            "accuracy, shown but never tested in a claim. Spearman's p is exact (all orderings) "
            "up to 9 tasks. — = undefined (too few tasks or a constant variable)."
        ),
    ]
    scopes = list(dict.fromkeys(relations["scope"]))
    for scope in (s for s in scopes if s.startswith(PAPER_SCOPE)):
        rows = relations[relations["scope"] == scope].to_dict("records")
        blocks += [
            Heading(f"{scope[:1].upper()}{scope[1:]} (per-task mean over the five paper "
                    "methods and seeds: the scope of claims 1 and 2)", 3),
            Table(["measure", "outcome", *STAT_HEAD], [label(r) + _stat_cells(r) for r in rows]),
        ]  # fmt: skip
    per_arm = relations[~relations["scope"].str.startswith(PAPER_SCOPE)].to_dict("records")
    blocks += [
        Heading("Per method (per-task mean over seeds)", 3),
        Table(
            ["method", "measure", "outcome", *STAT_HEAD],
            [[method_label(r["scope"], mark=True), *label(r), *_stat_cells(r)] for r in per_arm],
            align=["l", "l", "l", *["r"] * len(STAT_HEAD)],
        ),
    ]
    return blocks
