"""Verdicts on science.md's claims, one module per claim family, each with a :class:`Status`.

- :mod:`.claim1`: ss measures difficulty better than ACS.
- :mod:`.claim2`: difficulty and outcomes (dID, dDG, CF) are related.
- :mod:`.claim3`: how the five paper methods trade gains against forgetting (3a-3d).
"""

from __future__ import annotations

import pandas as pd

from clipgap.report.claims.claim1 import claim_ss_vs_acs
from clipgap.report.claims.claim2 import claim_relations
from clipgap.report.claims.claim3 import claim_methods
from clipgap.report.claims.verdict import Claim, ClaimOptions, Status

__all__ = ["Claim", "ClaimOptions", "Status", "evaluate_claims"]


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
