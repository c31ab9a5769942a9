"""Verdicts on science.md's claims, one module per claim family, each with a :class:`Status`.

Claims use exactly the paper's five methods of one preset, run on all training images (a
claim group, :mod:`clipgap.report.scopes`); other arms never enter them.

- :mod:`.difficulty_measures` (claim 1): ss measures difficulty better than ACS (bootstrap
  over tasks).
- :mod:`.difficulty_outcomes` (claim 2): difficulty and outcomes (dID, dDG, CF) are related
  (Kendall + Holm).
- :mod:`.method_tradeoffs` (claim 3): how the five paper methods trade gains against
  forgetting (3a-3d; paired
  signed-rank tests across tasks, :mod:`.ranktests`).
"""

from __future__ import annotations

import pandas as pd

from clipgap.report.claims.difficulty_measures import claim_ss_vs_acs
from clipgap.report.claims.difficulty_outcomes import claim_relations
from clipgap.report.claims.method_tradeoffs import claim_methods
from clipgap.report.claims.verdict import Claim, ClaimOptions, Status
from clipgap.report.scopes import scope_name

__all__ = ["Claim", "ClaimOptions", "Status", "evaluate_claims"]


def evaluate_claims(
    cells: pd.DataFrame,
    groups: dict[str, dict[str, str]],
    means: dict[str, pd.DataFrame],
    relations: pd.DataFrame,
    opts: ClaimOptions | None = None,
    *,
    split: str = "test",
) -> list[Claim]:
    """All claims of science.md for each claim group, in order (claim 3 as 3a-3d).

    ``means`` maps each group's scope name to its task means; ``split`` is the split the
    difficulty measures used (named in claim 2's headroom note).
    """
    opts = opts or ClaimOptions()
    claims = [
        claim_ss_vs_acs(means[scope_name(group)], arms, relations, group, opts)
        for group, arms in groups.items()
    ]
    claims += [
        claim_relations(relations, cells, arms, group, opts, split=split)
        for group, arms in groups.items()
    ]
    return claims + claim_methods(cells, groups, opts)
