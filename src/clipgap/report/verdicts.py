"""What a claim test returns: a verdict with its evidence, and the options that decide it."""

from __future__ import annotations

from dataclasses import dataclass, field

from clipgap.errors import ConfigError
from clipgap.report.relations import MIN_POINTS

HOLDS, FAILS, UNTESTABLE = "holds", "does not hold", "cannot be tested"


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
    """A verdict on one claim: ``key`` ("1", "3a"...), the claim as tested, ``status`` (one of
    HOLDS/FAILS/UNTESTABLE) and ``evidence``, sentences with the numbers behind the verdict."""

    key: str
    statement: str
    status: str
    evidence: list[str] = field(default_factory=list)


def too_few(n: int, needed: int, what: str = "tasks") -> str:
    return f"n too small: {n} {what}, at least {needed} needed."
