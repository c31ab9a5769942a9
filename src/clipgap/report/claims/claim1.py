"""Claim 1: the silhouette score (ss) measures task difficulty better than ACS.

Over tasks, with dID per task averaged over methods and seeds, |Spearman rho(ss, dID)| >
|rho(ACS, dID)| (also reported per method).
"""

from __future__ import annotations

import math

import pandas as pd

from clipgap.report.claims.verdict import Claim, ClaimOptions, Status, rho_text, too_few
from clipgap.report.formatting import num
from clipgap.report.labels import method_label, order_arms
from clipgap.report.relations import POOLED, lookup


def claim_ss_vs_acs(relations: pd.DataFrame, opts: ClaimOptions) -> Claim:
    """Claim 1 on task means, with the per-method comparison as supporting evidence."""
    statement = (
        "The silhouette score (ss, modality clusters) tracks task difficulty better than ACS: "
        "|ρ(ss, dID)| > |ρ(ACS, dID)| over tasks, dID averaged over methods and seeds."
    )
    ss = lookup(relations, POOLED, "silhouette_modality", "delta_id")
    acs = lookup(relations, POOLED, "acs", "delta_id")
    n = int(min(ss["n"], acs["n"]))
    evidence = [f"Over {n} tasks: ss vs dID {rho_text(ss)}; ACS vs dID {rho_text(acs)}."]
    if n < opts.min_tasks:
        return Claim(
            "1", statement, Status.CANNOT_BE_TESTED, [*evidence, too_few(n, opts.min_tasks)]
        )
    if not (math.isfinite(ss["spearman_rho"]) and math.isfinite(acs["spearman_rho"])):
        evidence.append("A correlation is undefined (a measure or dID is constant over tasks).")
        return Claim("1", statement, Status.CANNOT_BE_TESTED, evidence)
    a, b = abs(ss["spearman_rho"]), abs(acs["spearman_rho"])
    status = Status.HOLDS if a > b else Status.DOES_NOT_HOLD
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
