"""Claim 2: task difficulty and fine-tuning outcomes are related.

Per claim group, over its task means (the five paper methods averaged per task): the
relations of ss, ACS and zero-shot accuracy with dID, dDG and CF, except zero-shot accuracy vs
dID, which is partly headroom (dID = fine-tuned - zero-shot accuracy on the same test images)
and is shown but never decides. The claim is an existence claim:

- holds: some deciding relation is significant (Kendall tau p < level, exact for few tasks)
  after Holm's correction over the deciding relations;
- not significant: none is. A test that finds no relation cannot show there is none, so this
  claim is never "does not hold";
- cannot be tested: a paper method is missing, fewer than ``min_tasks`` tasks, no relation
  defined, or too few tasks for even a perfect ranking (exact p = 2 / n!) to survive Holm.
"""

from __future__ import annotations

import math

import pandas as pd

from clipgap.record import OUTCOME_LABELS
from clipgap.report.claims.verdict import Claim, ClaimOptions, Status, keyed, rho_text, too_few
from clipgap.report.formatting import num, pval
from clipgap.report.labels import MEASURE_NAMES, method_label
from clipgap.report.relations import TEST_P, lookup
from clipgap.report.scopes import missing_methods, scope_name
from clipgap.stats import relate


def statement(level: float) -> str:
    return (
        "Task difficulty and fine-tuning outcomes are related: some relation of ss, ACS or "
        "zero-shot accuracy with dID, dDG or CF over tasks (the five paper methods averaged "
        f"per task) is significant (Kendall τ p < {level:g}, Holm-corrected over the relations "
        "tested; zero-shot accuracy vs dID is headroom and not tested)."
    )


def claim_relations(
    relations: pd.DataFrame,
    cells: pd.DataFrame,
    arms: dict[str, str],
    group: str,
    opts: ClaimOptions,
    *,
    split: str,
) -> Claim:
    """Claim 2 for one claim group. ``split``: where difficulty was measured (for the text)."""
    key, text = keyed("2", group), statement(opts.level)
    missing = missing_methods(arms)
    if missing:
        reason = f"No complete runs of {', '.join(method_label(m) for m in missing)}."
        return Claim(key, text, Status.CANNOT_BE_TESTED, [reason])
    pooled = relations[relations["scope"] == scope_name(group)]
    tested = pooled[pooled["decides"] & pooled[TEST_P].notna()]
    n = int(pooled["n"].max()) if len(pooled) else 0
    if n < opts.min_tasks or tested.empty:
        reason = too_few(n, opts.min_tasks) if n < opts.min_tasks else "No relation is defined."
        return Claim(key, text, Status.CANNOT_BE_TESTED, [reason])
    evidence = [f"{len(tested)} relations tested over task means (up to {n} tasks)."]
    significant = tested[tested["significant"]]
    for row in significant.to_dict("records"):
        sign = "positive" if row["kendall_tau"] > 0 else "negative"
        holm = "survives Holm" if row["holm"] else "not after Holm"
        name = f"{MEASURE_NAMES[row['measure']]} vs {OUTCOME_LABELS[row['outcome']]}"
        evidence.append(f"{name}: {rho_text(row)}, {sign}, {holm}.")
    if significant.empty:
        evidence.append(f"No relation has p < {opts.level:g}, even before correction.")
    evidence.append(_headroom(relations, group, split))
    evidence.append(_per_method_significant(relations, arms, opts.level))
    mine = cells[cells["arm"].isin(arms.values())]
    dg_cf = relate(mine["delta_dg"], mine["cf"]).as_row()
    evidence.append(_cells_text(dg_cf))
    # Kendall's exact two-sided p cannot go below 2 / n!: with few tasks and many relations no
    # result could survive Holm, and a verdict would claim more than the study can show.
    floor, threshold = 2 / math.factorial(n), opts.level / len(tested)
    if floor > threshold:
        evidence.insert(
            0,
            f"n too small: with {n} tasks the smallest possible p is {pval(floor)}, above the "
            f"Holm threshold {pval(threshold)} for {len(tested)} relations.",
        )
        return Claim(key, text, Status.CANNOT_BE_TESTED, evidence)
    status = Status.HOLDS if bool(tested["holm"].any()) else Status.NOT_SIGNIFICANT
    return Claim(key, text, status, evidence)


def _cells_text(row: dict) -> str:
    """dDG vs CF over (task, method) cells, without a p-value: cells of one task share its
    difficulty and data, so they are not independent and no test over cells is valid."""
    rho, tau = num(row["spearman_rho"], 2, signed=True), num(row["kendall_tau"], 2, signed=True)
    return (
        f"dDG vs CF over {row['n']} (task, paper method) cells: ρ = {rho} (τ = {tau}); "
        "descriptive, no p-value: cells of one task are not independent."
    )


def _headroom(relations: pd.DataFrame, group: str, split: str) -> str:
    row = lookup(relations, scope_name(group), "zero_shot_accuracy", "delta_id")
    if split == "test":
        how = "on the same test images this zero-shot accuracy was measured on"
    else:
        how = (
            f"on the test split, and the zero-shot accuracy here ({split} split) tracks the "
            "test split's closely"
        )
    return (
        f"Shown, not tested: zero-shot acc vs dID {rho_text(row)}. dID = fine-tuned − zero-shot "
        f"accuracy {how}, so a task the original model already solves has little headroom to "
        "gain: this relation is partly an artefact of how dID is measured."
    )


def _per_method_significant(relations: pd.DataFrame, arms: dict[str, str], level: float) -> str:
    parts = []
    for arm in arms.values():
        rows = relations[(relations["scope"] == arm) & relations["significant"]]
        found = [
            f"{MEASURE_NAMES[r['measure']]}–{OUTCOME_LABELS[r['outcome']]} "
            f"{'+' if r['kendall_tau'] > 0 else '−'}"
            for r in rows[rows["decides"]].to_dict("records")
        ]
        parts.append(f"{method_label(arm)}: {', '.join(found) or 'none'}")
    return f"Per paper method, uncorrected p < {level:g} (descriptive): " + "; ".join(parts) + "."
