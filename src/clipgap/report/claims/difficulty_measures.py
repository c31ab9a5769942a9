"""Claim 1: the silhouette score (ss) measures task difficulty better than ACS.

Per claim group (the five paper methods of one preset, all training images), one point per
task with all five methods: dID averaged over the methods and seeds. The two Spearman
correlations rho(ss, dID) and rho(ACS, dID) share dID, so they are compared with a test for
dependent correlations: a percentile bootstrap over tasks (``ClaimOptions.n_resamples``,
seeded by ``random_state``) of D = |rho(ss, dID)| - |rho(ACS, dID)| with confidence
1 - level (``ClaimOptions.level``, the significance level) decides:

- holds: the interval lies above 0; does not hold: it lies below 0; not significant: it
  contains 0;
- cannot be tested: a paper method is missing, fewer than ``min_tasks`` tasks, too few tasks
  for the bootstrap to exclude 0 at all (:mod:`.attainability`: 6 at level 0.05), or a
  correlation is undefined (a constant measure or dID).

The evidence also says whether each rho has the sign the paper's reading expects: a more
misaligned task (higher ss, lower ACS) has more to gain, so rho(ss, dID) > 0 and
rho(ACS, dID) < 0 (:data:`EXPECTED_SIGN`).

Williams' t (Steiger, 1980) on the same two correlations, with signs aligned so that it
compares magnitudes, is reported as a cross-check; it does not decide.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from clipgap.report.claims.attainability import (
    bootstrap_can_decide,
    smallest_decidable_n,
    two_task_share,
)
from clipgap.report.claims.verdict import Claim, ClaimOptions, Status, keyed, rho_text, too_few
from clipgap.report.formatting import integer, num, pval
from clipgap.report.labels import method_label
from clipgap.report.relations import lookup
from clipgap.report.scopes import missing_methods, scope_name
from clipgap.stats import bootstrap_rho_difference, relate, williams_t

STATEMENT = (
    "The silhouette score (ss, modality clusters) tracks task difficulty better than ACS: "
    "|ρ(ss, dID)| > |ρ(ACS, dID)| over tasks, dID averaged over the five paper methods and "
    "seeds, decided by a bootstrap interval on the difference."
)


EXPECTED_SIGN = {"silhouette_modality": 1, "acs": -1}
"""The sign of rho(measure, dID) under the paper's reading (misaligned tasks gain more)."""


def claim_ss_vs_acs(
    means: pd.DataFrame,
    arms: dict[str, str],
    relations: pd.DataFrame,
    group: str,
    opts: ClaimOptions,
) -> Claim:
    """Claim 1 for one claim group, from its task means (see :func:`scopes.paper_means`)."""
    key = keyed("1", group)
    missing = missing_methods(arms)
    if missing:
        reason = f"No complete runs of {', '.join(method_label(m) for m in missing)}."
        return Claim(key, STATEMENT, Status.CANNOT_BE_TESTED, [reason])
    points = means[["silhouette_modality", "acs", "delta_id"]].dropna()
    n = len(points)
    scope = scope_name(group)
    ss = lookup(relations, scope, "silhouette_modality", "delta_id")
    acs = lookup(relations, scope, "acs", "delta_id")
    evidence = [
        f"Over {n} tasks with all five paper methods: ss vs dID {rho_text(ss)}; "
        f"ACS vs dID {rho_text(acs)}."
    ]
    evidence.append(sign_text(ss, acs))
    if n < opts.min_tasks:
        return Claim(
            key, STATEMENT, Status.CANNOT_BE_TESTED, [*evidence, too_few(n, opts.min_tasks)]
        )
    evidence.append(attainability_text(n, opts.level))
    if not bootstrap_can_decide(n, opts.level):
        return Claim(key, STATEMENT, Status.CANNOT_BE_TESTED, evidence)
    boot = bootstrap_rho_difference(
        points["silhouette_modality"],
        points["acs"],
        points["delta_id"],
        n_resamples=opts.n_resamples,
        confidence=1 - opts.level,
        random_state=opts.random_state,
    )
    if not math.isfinite(boot["low"]):
        evidence.append("A correlation is undefined (a measure or dID is constant over tasks).")
        return Claim(key, STATEMENT, Status.CANNOT_BE_TESTED, evidence)
    status = _decide(boot)
    evidence += [_interval_text(boot, opts), _williams_text(points)]
    evidence.append(_per_method(relations, arms))
    return Claim(key, STATEMENT, status, evidence)


def sign_text(ss: dict, acs: dict) -> str:
    """Whether rho(ss, dID) and rho(ACS, dID) have the signs the paper's reading expects."""

    def one(name: str, row: dict, measure: str) -> str:
        rho, expected = row["spearman_rho"], EXPECTED_SIGN[measure]
        want = "> 0" if expected > 0 else "< 0"
        if not math.isfinite(rho) or rho == 0:
            return f"ρ({name}, dID) {want} expected, undefined or 0 here"
        verdict = "as expected" if np.sign(rho) == expected else "opposite to the reading"
        return f"ρ({name}, dID) {want} expected, {num(rho, 2, signed=True)} here: {verdict}"

    return (
        "Signs (the paper's reading: a more misaligned task, higher ss and lower ACS, has more "
        f"to gain): {one('ss', ss, 'silhouette_modality')}; {one('ACS', acs, 'acs')}."
    )


def attainability_text(n: int, level: float) -> str:
    """Why (or that) the bootstrap can exclude 0 at ``n`` tasks (:mod:`.attainability`)."""
    share, tail, needed = float(two_task_share(n)), level / 2, smallest_decidable_n(level)
    head = (
        f"Resamples holding only two distinct tasks give |ρ| = 1 for both measures (D = 0): "
        f"{100 * share:.1f}% of resamples at n = {n}, against the tail share α/2 = "
        f"{100 * tail:g}%; the bootstrap can exclude 0 only from n = {needed} tasks"
    )
    if bootstrap_can_decide(n, level):
        return head + "."
    return head + f", so at n = {n} the claim cannot be tested."


def _decide(boot: dict) -> Status:
    if boot["low"] > 0:
        return Status.HOLDS
    if boot["high"] < 0:
        return Status.DOES_NOT_HOLD
    return Status.NOT_SIGNIFICANT


def _interval_text(boot: dict, opts: ClaimOptions) -> str:
    level = f"{100 * (1 - opts.level):g}%"
    dropped = boot["n_resamples"] - boot["n_valid"]
    note = f"; {integer(dropped)} with a constant variable left out" if dropped else ""
    where = {Status.HOLDS: "above 0", Status.DOES_NOT_HOLD: "below 0"}.get(_decide(boot))
    return (
        f"D = |ρ(ss)| − |ρ(ACS)| = {num(boot['estimate'], 2, signed=True)}, {level} bootstrap "
        f"interval [{num(boot['low'], 2, signed=True)}, {num(boot['high'], 2, signed=True)}] "
        f"(n = {boot['n']} tasks resampled {integer(boot['n_resamples'])} times, seed "
        f"{boot['random_state']}{note}): " + (f"the interval lies {where}." if where else
        "the interval contains 0.")
    )  # fmt: skip


def _williams_text(points: pd.DataFrame) -> str:
    """Williams' t on |rho(ss, dID)| vs |rho(ACS, dID)|: flipping a measure's sign flips its
    correlations, so aligned signs make the test compare magnitudes."""
    ss, acs, did = (points[c].to_numpy() for c in ("silhouette_modality", "acs", "delta_id"))
    r_ss, r_acs = relate(ss, did).spearman_rho, relate(acs, did).spearman_rho
    r_between = relate(ss, acs).spearman_rho
    if not all(math.isfinite(r) for r in (r_ss, r_acs, r_between)):
        return "Williams' t: undefined (a constant variable)."
    r_between *= np.sign(r_ss) * np.sign(r_acs) or 1.0
    t, p = williams_t(abs(r_ss), abs(r_acs), float(r_between), len(points))
    return (
        f"Cross-check, Williams' t on the same Spearman ρ's (signs aligned, ρ(ss, ACS) = "
        f"{num(r_between, 2, signed=True)}): t({len(points) - 3}) = {num(t, 2, signed=True)}, "
        f"p = {pval(p)} (approximate for Spearman's ρ; does not decide)."
    )


def _per_method(relations: pd.DataFrame, arms: dict[str, str]) -> str:
    parts, wins, total = [], 0, 0
    for arm in arms.values():
        ss = lookup(relations, arm, "silhouette_modality", "delta_id")["spearman_rho"]
        acs = lookup(relations, arm, "acs", "delta_id")["spearman_rho"]
        if math.isfinite(ss) and math.isfinite(acs):
            total += 1
            wins += abs(ss) > abs(acs)
        parts.append(f"{method_label(arm)} {num(ss, 2, signed=True)} vs {num(acs, 2, signed=True)}")
    return (
        f"Per paper method (descriptive), |ρ(ss, dID)| > |ρ(ACS, dID)| for {wins} of {total} "
        f"(ρ(ss) vs ρ(ACS): {'; '.join(parts)})."
    )
