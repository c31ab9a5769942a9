"""Claim 2: task difficulty and fine-tuning outcomes are related.

At least one of the (ss, ACS, zero-shot acc) x (dID, dDG, CF) relations over task means is
significant (Kendall tau p < alpha, exact for few tasks) after Holm's correction. Untestable when
even a perfect ranking (p = 2 / n!) could not survive the correction.
"""

from __future__ import annotations

import math

import pandas as pd

from clipgap.report.claims.verdict import Claim, ClaimOptions, Status, rho_text, too_few
from clipgap.report.formatting import pval
from clipgap.report.labels import MEASURE_NAMES, OUTCOME_NAMES, method_label, order_arms
from clipgap.report.relations import POOLED, TEST_P, safe_relate


def claim_relations(relations: pd.DataFrame, cells: pd.DataFrame, opts: ClaimOptions) -> Claim:
    """Claim 2: significant difficulty/outcome relations over task means, with their sign."""
    statement = (
        "Task difficulty and fine-tuning outcomes are related: some relation of ss, ACS or "
        f"zero-shot accuracy with dID, dDG or CF over tasks is significant (Kendall τ p < "
        f"{opts.alpha:g}, Holm-corrected over the relations tested)."
    )
    pooled = relations[relations["scope"] == POOLED]
    tested = pooled[pooled[TEST_P].notna()]
    n = int(pooled["n"].max()) if len(pooled) else 0
    if n < opts.min_tasks or tested.empty:
        reason = too_few(n, opts.min_tasks) if n < opts.min_tasks else "No relation is defined."
        return Claim("2", statement, Status.CANNOT_BE_TESTED, [reason])
    evidence = [f"{len(tested)} relations tested over task means (up to {n} tasks)."]
    significant = tested[tested["significant"]]
    for row in significant.to_dict("records"):
        sign = "positive" if row["kendall_tau"] > 0 else "negative"
        holm = "survives Holm" if row["holm"] else "not after Holm"
        evidence.append(
            f"{MEASURE_NAMES[row['measure']]} vs {OUTCOME_NAMES[row['outcome']]}: {rho_text(row)}, "
            f"{sign}, {holm}."
        )
    if significant.empty:
        evidence.append(f"No relation has p < {opts.alpha:g}, even before correction.")
    evidence.append(_per_method_significant(relations, opts.alpha))
    dg_cf = safe_relate(cells["delta_dg"], cells["cf_mean"])
    evidence.append(
        f"dDG vs CF over {dg_cf['n']} (task, method) cells: {rho_text(dg_cf)} (descriptive; cells "
        "of one task share its difficulty)."
    )
    # Kendall's exact two-sided p cannot go below 2 / n!: with few tasks and many relations no
    # result could survive Holm, and "does not hold" would claim more than the study can show.
    floor, threshold = 2 / math.factorial(n), opts.alpha / len(tested)
    if floor > threshold:
        evidence.insert(
            0,
            f"n too small: with {n} tasks the smallest possible p is {pval(floor)}, above the "
            f"Holm threshold {pval(threshold)} for {len(tested)} relations.",
        )
        return Claim("2", statement, Status.CANNOT_BE_TESTED, evidence)
    status = Status.HOLDS if bool(tested["holm"].any()) else Status.DOES_NOT_HOLD
    return Claim("2", statement, status, evidence)


def _per_method_significant(relations: pd.DataFrame, alpha: float) -> str:
    parts = []
    for arm in order_arms(s for s in relations["scope"].unique() if s != POOLED):
        rows = relations[(relations["scope"] == arm) & relations["significant"]]
        found = [
            f"{MEASURE_NAMES[r['measure']]}–{OUTCOME_NAMES[r['outcome']]} "
            f"{'+' if r['kendall_tau'] > 0 else '−'}"
            for r in rows.to_dict("records")
        ]
        parts.append(f"{method_label(arm)}: {', '.join(found) or 'none'}")
    return f"Per method, uncorrected p < {alpha:g}: " + "; ".join(parts) + "."
