"""Test the claims of science.md on one study, stating the numbers and never overclaiming.

Each claim ends in one of three verdicts: ``holds``, ``does not hold`` or ``cannot be tested``
(too few tasks, a missing method, or no DG/control scores). Definitions:

1. ss measures difficulty better than ACS: over tasks, with dID per task averaged over methods
   and seeds, |Spearman rho(ss, dID)| > |rho(ACS, dID)| (also reported per method).
2. Difficulty and outcomes are related: at least one of the (ss, ACS, zero-shot acc) x (dID, dDG,
   CF) relations over task means is significant (Kendall tau p < alpha, exact for few tasks)
   after Holm's correction. Untestable when even a perfect ranking (p = 2 / n!) could not
   survive the correction.
3. Over the tasks on which all five paper methods ran, with per-task seed means averaged over
   tasks, see :mod:`clipgap.report.claims3`.
"""

from __future__ import annotations

import math

import pandas as pd

from clipgap.report.claims3 import claim_methods
from clipgap.report.formatting import num, pval
from clipgap.report.relations import POOLED, TEST_P, lookup, safe_relate
from clipgap.report.tables import MEASURE_NAMES, OUTCOME_NAMES, method_label, order_arms
from clipgap.report.verdicts import FAILS, HOLDS, UNTESTABLE, Claim, ClaimOptions, too_few


def _rho(row: dict) -> str:
    """Spearman's rho with Kendall's tau and its p-value (the one that decides significance)."""
    rho, tau = num(row["spearman_rho"], 2, signed=True), num(row["kendall_tau"], 2, signed=True)
    return f"ρ = {rho} (τ = {tau}, p = {pval(row['kendall_p'])})"


def claim_ss_vs_acs(relations: pd.DataFrame, opts: ClaimOptions) -> Claim:
    """Claim 1 on task means, with the per-method comparison as supporting evidence."""
    statement = (
        "The silhouette score (ss, modality clusters) tracks task difficulty better than ACS: "
        "|ρ(ss, dID)| > |ρ(ACS, dID)| over tasks, dID averaged over methods and seeds."
    )
    ss = lookup(relations, POOLED, "silhouette_modality", "delta_id")
    acs = lookup(relations, POOLED, "acs", "delta_id")
    n = int(min(ss["n"], acs["n"]))
    evidence = [f"Over {n} tasks: ss vs dID {_rho(ss)}; ACS vs dID {_rho(acs)}."]
    if n < opts.min_tasks:
        return Claim("1", statement, UNTESTABLE, [*evidence, too_few(n, opts.min_tasks)])
    if not (math.isfinite(ss["spearman_rho"]) and math.isfinite(acs["spearman_rho"])):
        evidence.append("A correlation is undefined (a measure or dID is constant over tasks).")
        return Claim("1", statement, UNTESTABLE, evidence)
    a, b = abs(ss["spearman_rho"]), abs(acs["spearman_rho"])
    status = HOLDS if a > b else FAILS
    evidence.append(f"|ρ(ss)| = {num(a, 2)} {'>' if a > b else '≤'} |ρ(ACS)| = {num(b, 2)}.")
    evidence.append(_per_method_claim1(relations))
    evidence.append(
        "This compares point estimates; it is not a significance test of the difference "
        "between the two correlations."
    )
    return Claim("1", statement, status, evidence)


def _per_method_claim1(relations: pd.DataFrame) -> str:
    arms = order_arms(s for s in relations["scope"].unique() if s != POOLED)
    parts, wins, total = [], 0, 0
    for arm in arms:
        ss = lookup(relations, arm, "silhouette_modality", "delta_id")["spearman_rho"]
        acs = lookup(relations, arm, "acs", "delta_id")["spearman_rho"]
        if math.isfinite(ss) and math.isfinite(acs):
            total += 1
            wins += abs(ss) > abs(acs)
        parts.append(f"{method_label(arm)} {num(ss, 2, signed=True)} vs {num(acs, 2, signed=True)}")
    return (
        f"Per method, |ρ(ss, dID)| > |ρ(ACS, dID)| for {wins} of {total} methods "
        f"(ρ(ss) vs ρ(ACS): {'; '.join(parts)})."
    )


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
        return Claim("2", statement, UNTESTABLE, [reason])
    evidence = [f"{len(tested)} relations tested over task means (up to {n} tasks)."]
    significant = tested[tested["significant"]]
    for row in significant.to_dict("records"):
        sign = "positive" if row["kendall_tau"] > 0 else "negative"
        holm = "survives Holm" if row["holm"] else "not after Holm"
        evidence.append(
            f"{MEASURE_NAMES[row['measure']]} vs {OUTCOME_NAMES[row['outcome']]}: {_rho(row)}, "
            f"{sign}, {holm}."
        )
    if significant.empty:
        evidence.append(f"No relation has p < {opts.alpha:g}, even before correction.")
    evidence.append(_per_method_significant(relations, opts.alpha))
    dg_cf = safe_relate(cells["delta_dg"], cells["cf_mean"])
    evidence.append(
        f"dDG vs CF over {dg_cf['n']} (task, method) cells: {_rho(dg_cf)} (descriptive; cells "
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
        return Claim("2", statement, UNTESTABLE, evidence)
    status = HOLDS if bool(tested["holm"].any()) else FAILS
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


def evaluate_claims(
    relations: pd.DataFrame, cells: pd.DataFrame, opts: ClaimOptions | None = None
) -> list[Claim]:
    """All claims of science.md, in order (claim 3 as its sub-claims 3a-3d)."""
    opts = opts or ClaimOptions()
    return [
        claim_ss_vs_acs(relations, opts),
        claim_relations(relations, cells, opts),
        *claim_methods(cells, opts),
    ]
