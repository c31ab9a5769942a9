"""What a claim test returns: a status, the evidence behind it, and the options that decide it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from clipgap.errors import ConfigError
from clipgap.report.formatting import num, pval
from clipgap.stats import MIN_POINTS


class Status(str, Enum):
    """The verdict on a claim.

    ``HOLDS``: the test supports the claim. ``DOES_NOT_HOLD``: the test supports the opposite.
    ``NOT_SIGNIFICANT``: the test cannot tell either way at the chosen level.
    ``CANNOT_BE_TESTED``: too few tasks (or a missing method, DG domain or control task) for
    the test to decide anything.
    """

    HOLDS = "holds"
    DOES_NOT_HOLD = "does not hold"
    NOT_SIGNIFICANT = "not significant"
    CANNOT_BE_TESTED = "cannot be tested"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ClaimOptions:
    """``alpha``: significance level in (0, 1). ``min_tasks``: fewest tasks for the correlation
    claims 1 and 2 (at least 3). ``min_rank_tasks``: fewest tasks shared by the five paper
    methods for the ranking claims 3a-3d (at least 1)."""

    alpha: float = 0.05
    min_tasks: int = 4
    min_rank_tasks: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError(f"claims.alpha is {self.alpha!r}; expected a number in (0, 1)")
        if self.min_tasks < MIN_POINTS:
            raise ConfigError(
                f"claims.min_tasks is {self.min_tasks!r}; expected an integer >= {MIN_POINTS}"
            )
        if self.min_rank_tasks < 1:
            raise ConfigError(
                f"claims.min_rank_tasks is {self.min_rank_tasks!r}; expected an integer >= 1"
            )


@dataclass(frozen=True)
class Claim:
    """A verdict on one claim: ``key`` ("1", "3a"...), the claim as tested, its ``status`` and
    ``evidence``, sentences with the numbers behind the verdict."""

    key: str
    statement: str
    status: Status
    evidence: list[str] = field(default_factory=list)


def too_few(n: int, needed: int, what: str = "tasks") -> str:
    return f"n too small: {n} {what}, at least {needed} needed."


def rho_text(row: dict) -> str:
    """Spearman's rho with Kendall's tau and its p-value (the one that decides significance)."""
    rho, tau = num(row["spearman_rho"], 2, signed=True), num(row["kendall_tau"], 2, signed=True)
    return f"ρ = {rho} (τ = {tau}, p = {pval(row['kendall_p'])})"
