"""relate() and mean_std() against scipy.stats / numpy on fixed numbers."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from clipgap.errors import MetricError
from clipgap.stats import holm, mean_std, pooled_std, relate

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
    got = relate(X, Y)
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
    assert all(type(v) is float for k, v in got.items() if k != "n")


def test_relate_exact_line_and_ties():
    got = relate([1, 2, 3, 4], [3, 5, 7, 9])
    assert (got["slope"], got["intercept"]) == pytest.approx((2.0, 1.0))
    assert got["r2"] == pytest.approx(1.0) and got["pearson_r"] == pytest.approx(1.0)
    tied = relate([1, 1, 2, 3, 3], [2, 1, 4, 5, 5])
    assert tied["kendall_tau"] == pytest.approx(
        stats.kendalltau([1, 1, 2, 3, 3], [2, 1, 4, 5, 5])[0]
    )


def test_relate_drops_nan_pairs():
    x = X[:3] + [float("nan")] + X[3:] + [0.5]
    y = Y[:3] + [10.0] + Y[3:] + [float("nan")]
    assert relate(x, y) == pytest.approx(relate(X, Y), nan_ok=True)
    assert relate(np.array(x), tuple(y))["n"] == 8


@pytest.mark.parametrize(
    ("x", "y", "line_defined"),
    [
        ([], [], False),
        ([1.0], [2.0], False),
        ([1.0, 2.0], [2.0, 5.0], True),  # two points: a line but no correlation
        ([1.0, 2.0, float("nan"), 4.0], [1.0, 3.0, 0.0, float("nan")], True),
        ([2.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0], False),  # constant x
        ([1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0], True),  # constant y: slope 0
    ],
)
def test_relate_degenerate_inputs_are_nan_without_warnings(x, y, line_defined):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = relate(x, y)
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if not (math.isnan(a) or math.isnan(b))]
    assert got["n"] == len(pairs)
    assert all(math.isnan(got[k]) for k in CORRELATION_KEYS)
    assert math.isnan(got["slope"]) is not line_defined
    if line_defined:
        fit = np.polyfit([a for a, _ in pairs], [b for _, b in pairs], 1)
        assert (got["slope"], got["intercept"]) == pytest.approx(tuple(fit), abs=1e-12)


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
        relate(x, y)


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
    out = relate(x, [1, 2, 3, 4, 5])
    # brute force: the share of the 120 orderings at least as extreme as the observed rho
    from scipy.stats import spearmanr

    obs = abs(spearmanr(x, [1, 2, 3, 4, 5])[0])
    count = sum(abs(spearmanr(x, p)[0]) >= obs - 1e-12 for p in permutations([1, 2, 3, 4, 5]))
    assert out["spearman_p"] == pytest.approx(count / 120)
    perfect = relate([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
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
