"""Can claim 1's bootstrap decide anything at this number of tasks? An exact, data-free check.

Claim 1 resamples the n tasks with replacement and takes the percentile interval of
D = |rho(ss, dID)| - |rho(ACS, dID)|. A resample that holds only two distinct tasks gives
|rho| = 1 for both measures (two distinct points, whatever their copies), so D = 0 exactly; one
with a single distinct task is constant and left out. The interval can lie above (or below) 0
only if fewer than the tail share level / 2 of the kept resamples have D <= 0 (>= 0), so it can
never exclude 0 when the two-task resamples alone reach that share. Their probability is exact:
P(exactly k distinct of n draws from n) = C(n, k) * k! * S(n, k) / n^n (S: Stirling numbers of
the second kind), here k = 1: n / n^n and k = 2: C(n, 2) (2^n - 2) / n^n. The check is
necessary, not sufficient: resamples with three or more distinct tasks may tie at 0 too.
"""

from __future__ import annotations

import math
from fractions import Fraction

MAX_TASKS = 1000  # the search for the smallest n stops here


def two_task_share(n: int) -> Fraction:
    """The exact share of bootstrap resamples of ``n`` tasks (among those with at least two
    distinct tasks) that hold exactly two distinct tasks, where D = 0 necessarily."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    total = Fraction(n**n)
    one = Fraction(n) / total
    two = Fraction(math.comb(n, 2) * (2**n - 2)) / total
    return two / (1 - one)


def bootstrap_can_decide(n: int, level: float) -> bool:
    """Whether a percentile interval with confidence 1 - ``level`` over ``n`` tasks can
    exclude 0 at all (the two-task resamples stay below the tail share level / 2)."""
    return n >= 3 and two_task_share(n) < Fraction(level) / 2


def smallest_decidable_n(level: float) -> int:
    """The smallest number of tasks at which :func:`bootstrap_can_decide` (6 at level = 0.05:
    the two-task share is 9.6 % at n = 5 and 2.0 % at n = 6)."""
    for n in range(3, MAX_TASKS + 1):
        if bootstrap_can_decide(n, level):
            return n
    raise ValueError(f"no n <= {MAX_TASKS} can decide at level = {level}")
