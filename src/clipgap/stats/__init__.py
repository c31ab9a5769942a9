"""Statistics of a study's outcomes, the only ones clipgap computes (the report and the
predictors keep none of their own): least-squares lines and prediction intervals (``lines``),
correlations (``correlations``), leave-one-out prediction (``loto``), significance tests
(``tests``), bootstrap intervals (``bootstrap``), means and spreads (``spread``).

Pure functions on sequences of numbers. NaN marks a missing value and is dropped with its pair,
never an error; an infinite value, a non-number or unequal lengths are input errors
(:class:`~clipgap.errors.MetricError`). A significance level is called ``level``.

**Degenerate input, one rule.** A statistic the data do not define is NaN, never an error and
never a warning: correlations, their p-values and R^2 need at least ``MIN_POINTS`` = 3 pairs
and both variables varying, a residual spread or prediction interval needs a residual degree of
freedom. The least-squares line is always defined for one point or more: with a constant x
(or a single point) it is the mean model, flat at mean(y) (slope 0, ``Fit.constant`` True, n - 1
residual degrees of freedom), the least-squares answer when x carries no information. A table
of relations shows no line beside undefined correlations (:meth:`Fit.as_row`).

One result type for a line or correlation fit: :class:`Fit`.
"""

from clipgap.stats.bootstrap import bootstrap_rho_difference
from clipgap.stats.correlations import (
    EXACT_SPEARMAN_MAX_N,
    exact_spearman_p,
    partial_spearman,
    relate,
    spearman,
    spearman_rows,
)
from clipgap.stats.inputs import MIN_POINTS, NAN
from clipgap.stats.lines import LEVEL, STAT_KEYS, Fit, fit_line, prediction_interval
from clipgap.stats.loto import Association, associate, loto_predictions
from clipgap.stats.spread import mean_std, pooled_std
from clipgap.stats.tests import (
    EXACT_SIGNED_RANK_MAX_N,
    friedman_test,
    holm,
    signed_rank_min_n,
    signed_rank_test,
    williams_t,
)

__all__ = [
    "EXACT_SIGNED_RANK_MAX_N",
    "EXACT_SPEARMAN_MAX_N",
    "LEVEL",
    "MIN_POINTS",
    "NAN",
    "STAT_KEYS",
    "Association",
    "Fit",
    "associate",
    "bootstrap_rho_difference",
    "exact_spearman_p",
    "fit_line",
    "friedman_test",
    "holm",
    "loto_predictions",
    "mean_std",
    "partial_spearman",
    "pooled_std",
    "prediction_interval",
    "relate",
    "signed_rank_min_n",
    "signed_rank_test",
    "spearman",
    "spearman_rows",
    "williams_t",
]
