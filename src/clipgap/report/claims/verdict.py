"""What a claim test returns: a status, the evidence behind it, and the options that decide it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from clipgap.errors import ConfigError
from clipgap.report.formatting import num, pval
from clipgap.stats import MIN_POINTS


class Status(str, Enum):
    """The verdict on a claim.

    ``HOLDS``: the test supports the claim at the significance level. ``DOES_NOT_HOLD``: the test supports
    the opposite. ``NOT_SIGNIFICANT``: the test cannot tell either way at that level.
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
    """``level``: the significance level, in (0, 1) (claim 1's interval has confidence
    1 - level); never called alpha, which names the interpolation weight. ``min_tasks``: fewest
    tasks for the correlation claims 1 and 2 (at least 3; the rank claims 3a-3d need as many
    tasks as a signed-rank test needs to reach the level, see
    :func:`clipgap.stats.signed_rank_min_n`). ``n_resamples`` and ``random_state``: claim 1's
    bootstrap over tasks (same seed, same interval)."""

    level: float = 0.05
    min_tasks: int = 4
    n_resamples: int = 10_000
    random_state: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ConfigError(f"claims.level is {self.level!r}; expected a number in (0, 1)")
        if self.min_tasks < MIN_POINTS:
            raise ConfigError(
                f"claims.min_tasks is {self.min_tasks!r}; expected an integer >= {MIN_POINTS}"
            )
        if self.n_resamples < 100:
            raise ConfigError(
                f"claims.n_resamples is {self.n_resamples!r}; expected an integer >= 100"
            )


@dataclass(frozen=True)
class Claim:
    """A verdict on one claim: ``key`` ("1", "3a [paper]"...), the claim as tested, its
    ``status`` and ``evidence``, sentences with the numbers behind the verdict."""

    key: str
    statement: str
    status: Status
    evidence: list[str] = field(default_factory=list)


def combine(statuses: list[Status]) -> Status:
    """The status of a claim that is the conjunction of parts: it does not hold when any part
    does not hold, cannot be tested when any part cannot, holds when every part holds, and is
    not significant otherwise."""
    for status in (Status.DOES_NOT_HOLD, Status.CANNOT_BE_TESTED):
        if status in statuses:
            return status
    if statuses and all(s == Status.HOLDS for s in statuses):
        return Status.HOLDS
    return Status.NOT_SIGNIFICANT


def keyed(key: str, group: str) -> str:
    """``"1"`` or, in a study with several presets, ``"1 [paper]"``."""
    return f"{key} [{group}]" if group else key


def too_few(n: int, needed: int, what: str = "tasks") -> str:
    return f"n too small: {n} {what}, at least {needed} needed."


def rho_text(row: dict) -> str:
    """Spearman's rho with Kendall's tau and its p-value (the one that decides significance)."""
    rho, tau = num(row["spearman_rho"], 2, signed=True), num(row["kendall_tau"], 2, signed=True)
    return f"ρ = {rho} (τ = {tau}, p = {pval(row['kendall_p'])})"
