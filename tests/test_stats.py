"""The statistics package against scipy.stats / numpy on fixed numbers, and its one rule for
degenerate input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from clipgap.errors import MetricError
from clipgap.stats import (
    STAT_KEYS,
    associate,
    bootstrap_rho_difference,
    fit_line,
    friedman_test,
    holm,
    mean_std,
    pooled_std,
    relate,
    signed_rank_min_n,
    signed_rank_test,
    williams_t,
)

X = [0.12, 0.35, 0.31, 0.58, 0.77, 0.64, 0.90, 0.05]
Y = [4.0, 2.5, 3.1, 1.0, -0.5, 1.2, -1.8, 3.9]
CORRELATION_KEYS = (
    "pearson_r",
    "pearson_p",
    "spearman_rho",
    "spearman_p",
    "kendall_tau",
    "kendall_p",
    "r2",
)


def test_relate_matches_scipy():
    got = relate(X, Y).as_dict()
    pearson, spearman, kendall = stats.pearsonr(X, Y), stats.spearmanr(X, Y), stats.kendalltau(X, Y)
    line = stats.linregress(X, Y)
    assert got["n"] == 8
    assert got["pearson_r"] == pytest.approx(pearson[0], abs=1e-12)
    assert got["pearson_p"] == pytest.approx(pearson[1], rel=1e-9)
    assert got["spearman_rho"] == pytest.approx(spearman[0], abs=1e-12)

    def abs_rho(y, axis=-1):
        rx = stats.rankdata(X) - np.mean(stats.rankdata(X))
        ry = stats.rankdata(y, axis=axis)
        ry = ry - ry.mean(axis=axis, keepdims=True)
        return np.abs(ry @ rx) / np.sqrt((rx @ rx) * (ry * ry).sum(axis=axis))

    exact = stats.permutation_test(
        (Y,), abs_rho, permutation_type="pairings", n_resamples=np.inf,
        alternative="greater", vectorized=True,
    )  # fmt: skip
    assert got["spearman_p"] == pytest.approx(exact.pvalue, rel=1e-9)
    assert got["kendall_tau"] == pytest.approx(kendall[0], abs=1e-12)
    assert got["kendall_p"] == pytest.approx(kendall[1], rel=1e-9)
    assert got["slope"] == pytest.approx(line.slope, rel=1e-12)
    assert got["intercept"] == pytest.approx(line.intercept, rel=1e-12)
    assert got["r2"] == pytest.approx(line.rvalue**2, rel=1e-12)
    assert got["pearson_r"] < -0.9 and got["pearson_p"] < 0.01  # a strong negative relation
    assert all(type(got[k]) is float for k in STAT_KEYS)


def test_relate_exact_line_and_ties():
    got = relate([1, 2, 3, 4], [3, 5, 7, 9]).as_dict()
    assert (got["slope"], got["intercept"]) == pytest.approx((2.0, 1.0))
    assert got["r2"] == pytest.approx(1.0) and got["pearson_r"] == pytest.approx(1.0)
    tied = relate([1, 1, 2, 3, 3], [2, 1, 4, 5, 5]).as_dict()
    assert tied["kendall_tau"] == pytest.approx(
        stats.kendalltau([1, 1, 2, 3, 3], [2, 1, 4, 5, 5])[0]
    )


def test_relate_drops_nan_pairs():
    x = X[:3] + [float("nan")] + X[3:] + [0.5]
    y = Y[:3] + [10.0] + Y[3:] + [float("nan")]
    assert relate(x, y).as_dict() == pytest.approx(relate(X, Y).as_dict(), nan_ok=True)
    assert relate(np.array(x), tuple(y)).as_dict()["n"] == 8


@pytest.mark.parametrize(
    ("x", "y", "line"),
    [
        ([], [], None),  # no point: nothing is defined
        ([1.0], [2.0], (0.0, 2.0)),  # one point: the mean model
        ([1.0, 2.0], [2.0, 5.0], (3.0, -1.0)),  # two points: a line but no correlation
        ([1.0, 2.0, float("nan"), 4.0], [1.0, 3.0, 0.0, float("nan")], (2.0, -1.0)),
        ([2.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0], (0.0, 2.5)),  # constant x: flat at mean y
        ([1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0], (0.0, 5.0)),  # constant y: slope 0
    ],
)
def test_relate_degenerate_inputs_follow_the_one_rule(x, y, line):
    """Correlations, p-values and R^2 are NaN below 3 pairs or with a constant variable; the
    least-squares line exists from one point on and is flat at mean(y) for a constant x."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = relate(x, y)
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if not (math.isnan(a) or math.isnan(b))]
    assert fit.n == len(pairs) and not fit.correlated
    assert all(math.isnan(getattr(fit, k)) for k in CORRELATION_KEYS)
    if line is None:
        assert math.isnan(fit.slope) and math.isnan(fit.intercept)
    else:
        assert (fit.slope, fit.intercept) == pytest.approx(line, abs=1e-12)
        xs = {a for a, _ in pairs}
        assert fit.constant is (len(xs) == 1)
    # a table of relations shows no line beside undefined correlations
    row = fit.as_row()
    assert row["n"] == len(pairs) and all(math.isnan(row[k]) for k in STAT_KEYS)


def test_fit_line_and_relate_agree_on_the_line():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=7), rng.normal(size=7)
    line, fit = fit_line(x, y), relate(x, y)
    assert (line.slope, line.intercept, line.resid_std) == (fit.slope, fit.intercept, fit.resid_std)
    assert math.isnan(line.pearson_r) and fit.correlated  # fit_line fits the line alone
    assert fit.as_row() == {"n": 7, **{k: getattr(fit, k) for k in STAT_KEYS}}
    # constant x: both give the mean model
    flat = fit_line(np.full(4, 0.3), y[:4])
    assert flat.constant and flat.slope == 0.0 and flat.intercept == pytest.approx(y[:4].mean())
    assert relate(np.full(4, 0.3), y[:4]).slope == 0.0


def test_associate_reads_its_statistics_from_one_fit():
    rng = np.random.default_rng(4)
    x = rng.uniform(size=8)
    y = 0.5 * x + rng.normal(0, 0.05, 8)
    a = associate(x, y)
    assert a.n == 8 and a.slope == pytest.approx(np.polyfit(x, y, 1)[0])
    assert a.r2 == pytest.approx(stats.pearsonr(x, y)[0] ** 2)
    assert a.spearman == pytest.approx(stats.spearmanr(x, y)[0])
    assert a.kendall == pytest.approx(stats.kendalltau(x, y)[0])
    assert math.isnan(a.fit.spearman_p)  # no permutation p-values inside LOTO loops
    flat = associate(np.ones(5), y[:5])
    assert flat.slope == 0.0 and math.isnan(flat.r2) and math.isnan(flat.weighted_tau)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([1, 2, 3], [1, 2], "equal length; got 3 and 2"),
        ([1, 2, float("inf")], [1, 2, 3], r"x\[2\] is infinite"),
        ([[1, 2], [3, 4]], [1, 2], "x must be one-dimensional"),
        (["a", "b"], [1, 2], "x must be a sequence of numbers"),
    ],
)
def test_relate_bad_input(x, y, match):
    with pytest.raises(MetricError, match=match):
        relate(x, y).as_dict()


def test_mean_std():
    values = [0.2, 0.4, 0.9, 0.1]
    mean, std = mean_std(values)
    assert mean == pytest.approx(0.4)
    assert std == pytest.approx(np.std(values, ddof=1))
    assert std == pytest.approx(0.355902608401044)
    assert mean_std([1.0, float("nan"), 3.0]) == pytest.approx((2.0, math.sqrt(2.0)))
    one = mean_std([5.0])
    assert one[0] == 5.0 and math.isnan(one[1])
    assert all(math.isnan(v) for v in mean_std([]))
    with pytest.raises(MetricError, match="values must be one-dimensional"):
        mean_std([[1.0, 2.0]])


def test_spearman_p_is_exact_for_small_n():
    from itertools import permutations

    x = [0.1, 0.4, 0.2, 0.9, 0.5]
    out = relate(x, [1, 2, 3, 4, 5]).as_dict()
    # brute force: the share of the 120 orderings at least as extreme as the observed rho
    from scipy.stats import spearmanr

    obs = abs(spearmanr(x, [1, 2, 3, 4, 5])[0])
    count = sum(abs(spearmanr(x, p)[0]) >= obs - 1e-12 for p in permutations([1, 2, 3, 4, 5]))
    assert out["spearman_p"] == pytest.approx(count / 120)
    perfect = relate([1, 2, 3, 4, 5], [2, 4, 6, 8, 10]).as_dict()
    assert perfect["spearman_p"] == pytest.approx(2 / 120)


def test_pooled_std_is_the_within_group_spread():
    groups = [[0.10, 0.14, 0.09], [0.30, 0.36], [0.52, 0.50, 0.55, 0.61], [0.7]]
    stds = [np.std(g, ddof=1) if len(g) > 1 else float("nan") for g in groups]
    counts = [len(g) for g in groups]
    # oracle: within-group sum of squares over its degrees of freedom (N - k, groups of one
    # contribute nothing)
    ss_within = sum(((np.array(g) - np.mean(g)) ** 2).sum() for g in groups)
    dof = sum(len(g) - 1 for g in groups)
    assert pooled_std(stds, counts) == pytest.approx(math.sqrt(ss_within / dof), rel=1e-12)
    # equal sizes: the root mean of the variances
    assert pooled_std([0.1, 0.3], [2, 2]) == pytest.approx(math.sqrt((0.01 + 0.09) / 2))


def test_pooled_std_nan_rule():
    assert math.isnan(pooled_std([float("nan"), float("nan")], [1, 1]))  # one seed: no spread
    assert math.isnan(pooled_std([], []))
    assert pooled_std([0.2, float("nan")], [3, 1]) == pytest.approx(0.2)  # the group of one drops
    assert pooled_std([0.0, 0.0], [2, 2]) == 0.0  # measured zero spread stays 0
    with pytest.raises(MetricError, match="equal length"):
        pooled_std([0.1], [2, 2])


def test_holm_step_down():
    # sorted p 0.01, 0.02, 0.03 vs 0.05/3, 0.05/2, 0.05/1 -> all rejected
    assert holm([0.03, 0.01, 0.02], 0.05) == [True, True, True]
    # 0.02 > 0.05/3 stops the procedure at the first step
    assert holm([0.02, 0.04, 0.30], 0.05) == [False, False, False]
    # an undefined p-value is not a test: the family has two members
    assert holm([0.02, 0.04, float("nan")], 0.05) == [True, True, False]
    assert holm([0.001, 0.04, 0.5], 0.05) == [True, False, False]


# ---- Williams' t for dependent correlations ------------------------------------------------


def test_williams_t_worked_example():
    # Steiger (1980)'s example: verbal ability (j) correlates .5 with masculinity (k) and .4 with
    # femininity (h), which correlate .1; n = 103. Worked by hand:
    #   |R| = 1 - .25 - .16 - .01 + 2(.5)(.4)(.1) = 0.62,  rbar = .45
    #   denominator = 2 (102/100) 0.62 + .45^2 (1 - .1)^3 = 1.2648 + 0.14762 = 1.41242
    #   t = (.5 - .4) sqrt(102 (1.1) / 1.41242) = 0.1 sqrt(79.4380) = 0.89128, df = 100
    t, p = williams_t(0.5, 0.4, 0.1, 103)
    assert t == pytest.approx(0.89128, abs=1e-5)
    assert p == pytest.approx(0.3749, abs=1e-4)  # two-sided t(100) tail at 0.89128
    swapped, p_swapped = williams_t(0.4, 0.5, 0.1, 103)
    assert swapped == pytest.approx(-t) and p_swapped == pytest.approx(p)
    assert williams_t(0.3, 0.3, 0.5, 50) == (0.0, 1.0)
    assert all(math.isnan(v) for v in williams_t(0.5, 0.4, 0.1, 3))
    assert all(math.isnan(v) for v in williams_t(1.5, 0.4, 0.1, 30))


def test_williams_t_size_under_the_null():
    # Independent oracle: with equal population correlations r_jk = r_jh, the test must reject
    # about 5% of samples at alpha = 0.05.
    cov = np.array([[1.0, 0.4, 0.4], [0.4, 1.0, 0.3], [0.4, 0.3, 1.0]])  # j, k, h
    rng = np.random.default_rng(7)
    n, reps, rejected = 40, 2000, 0
    for _ in range(reps):
        r = np.corrcoef(rng.multivariate_normal(np.zeros(3), cov, size=n), rowvar=False)
        rejected += williams_t(r[0, 1], r[0, 2], r[1, 2], n)[1] < 0.05
    assert 0.035 < rejected / reps < 0.068


# ---- bootstrap of |rho1| - |rho2| ----------------------------------------------------------

TY = np.arange(15.0)
NOISE = np.array([3.1, -0.4, 2.2, 0.9, -1.7, 0.3, 1.4, -2.5, 0.0, 2.8, -0.9, 1.1, -1.2, 0.6, 2.0])


def test_bootstrap_interval_on_obvious_data():
    # x1 ranks y perfectly (|rho| = 1 in every resample), x2 is unrelated: D > 0 for sure.
    out = bootstrap_rho_difference(-2 * TY, NOISE, TY, n_resamples=2000, random_state=1)
    rho_noise = abs(stats.spearmanr(NOISE, TY)[0])
    assert out["estimate"] == pytest.approx(1 - rho_noise, abs=1e-12)
    assert 0 < out["low"] < out["estimate"] < out["high"] <= 1 + 1e-12
    assert out["n"] == 15 and out["n_valid"] == 2000
    flipped = bootstrap_rho_difference(NOISE, TY, TY, n_resamples=2000, random_state=1)
    assert flipped["high"] < 0 and flipped["estimate"] == pytest.approx(-out["estimate"])
    same = bootstrap_rho_difference(NOISE, NOISE, TY, n_resamples=500)
    assert (same["estimate"], same["low"], same["high"]) == (0.0, 0.0, 0.0)


def test_bootstrap_matches_scipy_and_is_seeded():
    x1 = TY + 3 * NOISE
    x2 = TY[::-1] + 5 * NOISE[::-1]

    def diff(a, b, c):
        return abs(stats.spearmanr(a, c)[0]) - abs(stats.spearmanr(b, c)[0])

    oracle = stats.bootstrap(
        (x1, x2, TY), diff, paired=True, vectorized=False, n_resamples=1500,
        method="percentile", random_state=np.random.default_rng(3),
    ).confidence_interval  # fmt: skip
    ours = bootstrap_rho_difference(x1, x2, TY, n_resamples=10_000, random_state=0)
    assert ours["low"] == pytest.approx(oracle.low, abs=0.07)
    assert ours["high"] == pytest.approx(oracle.high, abs=0.07)
    assert ours == bootstrap_rho_difference(x1, x2, TY, n_resamples=10_000, random_state=0)
    assert ours != bootstrap_rho_difference(x1, x2, TY, n_resamples=10_000, random_state=1)


def test_bootstrap_degenerate_inputs():
    short = bootstrap_rho_difference([1.0, 2.0], [2.0, 1.0], [1.0, 2.0])
    assert short["n"] == 2 and math.isnan(short["low"])
    constant = bootstrap_rho_difference([1.0] * 5, TY[:5], TY[:5])
    assert math.isnan(constant["estimate"]) and constant["n_valid"] == 0
    with_nan = bootstrap_rho_difference([*(-TY), np.nan], [*NOISE, 1.0], [*TY, 3.0])
    assert with_nan["n"] == 15
    with pytest.raises(MetricError, match="equal length"):
        bootstrap_rho_difference([1, 2, 3], [1, 2], [1, 2, 3])


# ---- Wilcoxon signed-rank and Friedman -----------------------------------------------------


def test_signed_rank_matches_scipy_on_hand_made_pairs():
    a = np.array([0.31, 0.42, 0.28, 0.55, 0.47, 0.39, 0.50])
    b = np.array([0.29, 0.35, 0.30, 0.41, 0.40, 0.39, 0.38])
    out = signed_rank_test(a - b)
    # the zero difference (0.39 - 0.39) is dropped, as scipy's default zero_method="wilcox"
    assert out["n"] == 7 and out["n_nonzero"] == 6
    assert out["pvalue"] == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-12)
    # by hand: the one negative difference (0.28 - 0.30) has the smallest |d| (in floating point
    # just below 0.31 - 0.29), rank 1: W- = 1, W+ = 20. Of the 2^6 sign patterns, 2 have
    # W- <= 1 ({}, {1}), so the exact two-sided p = 2 * 2/64.
    assert out["pvalue"] == pytest.approx(4 / 64)
    assert out["direction"] == 1 and out["mean"] == pytest.approx(np.mean(a - b))
    assert signed_rank_test(b - a)["direction"] == -1


def test_signed_rank_with_ties_matches_scipy():
    # tied |differences| (accuracies are multiples of 1/n_images): scipy's exact permutation
    # distribution is the oracle
    rng = np.random.default_rng(11)
    for size in (5, 8, 11):
        d = np.round(rng.normal(0.2, 1.0, size=size), 1)
        expected = stats.wilcoxon(d[d != 0]).pvalue
        assert signed_rank_test(d)["pvalue"] == pytest.approx(expected, rel=1e-12)


def test_signed_rank_exact_values():
    # all six differences of one sign: exact two-sided p = 2 / 2^6
    assert signed_rank_test([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])["pvalue"] == pytest.approx(2 / 64)
    assert signed_rank_test([-0.1] * 8)["pvalue"] == pytest.approx(2 / 256)
    zero = signed_rank_test([0.0, 0.0, 0.0])
    assert zero["pvalue"] == 1.0 and zero["direction"] == 0 and zero["n_nonzero"] == 0
    assert math.isnan(signed_rank_test([float("nan")])["pvalue"])
    assert signed_rank_min_n(0.05) == 6 and signed_rank_min_n(level=0.01) == 8
    assert 2 / 2**5 > 0.05 >= 2 / 2**6  # the rule behind signed_rank_min_n(0.05)


def test_friedman_matches_scipy():
    table = np.array([[0.1, 0.3, 0.2], [0.2, 0.5, 0.1], [0.0, 0.4, 0.3], [0.3, 0.6, 0.2]])
    expected = stats.friedmanchisquare(*table.T)
    assert friedman_test(table) == pytest.approx((expected.statistic, expected.pvalue))
    assert friedman_test(np.ones((4, 3))) == (0.0, 1.0)
    assert all(math.isnan(v) for v in friedman_test(table[:, :2]))
