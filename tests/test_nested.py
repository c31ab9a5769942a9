"""Nested leave-one-task-out and its permutation null: the hat-matrix shortcut against refitting,
the shuffle equivalence, and the whole procedure on synthetic studies (noise measures must not
beat the baseline more often than the test's level; one informative measure must be found)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from clipgap.errors import ConfigError, DataError, UnknownNameError
from clipgap.predict.honest import NestedOptions, nested_quality
from clipgap.stats.candidates import Candidate, design, measure_candidates, smoother, standardise
from clipgap.stats.nested import nested_run

N_STUDIES = 150


def synthetic_study(rng, *, n=12, methods=4, noise_measures=5, effect=0.0):
    """Outcomes = method offset + effect * slope_m * informative + N(0, 1) noise per task."""
    measures = {f"noise{j}": rng.normal(size=n) for j in range(noise_measures)}
    x = rng.normal(size=n)
    if effect:
        measures["informative"] = x
    slopes = rng.uniform(0.5, 1.5, size=methods)
    Y = rng.normal(size=methods) + effect * np.outer(x, slopes) + rng.normal(size=(n, methods))
    free = {"n_classes": rng.integers(2, 100, size=n).astype(float)}
    return measures, free, Y


def _weights(Y):
    return np.full(Y.shape[1], 1.0 / Y.shape[1])


def direct_nested(measures, Y):
    """Nested LOTO with lines only, by refitting np.polyfit in plain loops."""
    names, n = list(measures), len(Y)
    pred = np.empty_like(Y)
    for i in range(n):
        out = np.arange(n) != i
        errors = []
        for name in names:
            x, err = measures[name][out], 0.0
            for j in range(n - 1):
                keep = np.arange(n - 1) != j
                for t in range(Y.shape[1]):
                    y = Y[out, t]
                    line = np.polyfit(x[keep], y[keep], 1)
                    err += abs(np.polyval(line, x[j]) - y[j])
            errors.append(err)
        best = measures[names[int(np.argmin(errors))]]
        for t in range(Y.shape[1]):
            pred[i, t] = np.polyval(np.polyfit(best[out], Y[out, t], 1), best[i])
    return pred


def test_nested_predictions_equal_refitting_every_line():
    measures, _, Y = synthetic_study(np.random.default_rng(0), n=7, effect=1.0)
    cands = measure_candidates(list(measures), combine=1)
    run = nested_run(cands, measures, standardise(measures), Y, _weights(Y))
    assert np.allclose(run.predictions, direct_nested(measures, Y), atol=1e-10)


def test_ridge_leave_one_out_residuals_equal_refitting_with_sklearn():
    rng = np.random.default_rng(1)
    cols = {"a": rng.normal(size=9), "b": rng.normal(size=9)}
    y = rng.normal(size=9)
    cand = Candidate(("a", "b"), 2.0)
    Z = design(cand, cols, standardise(cols))
    loo = smoother(Z, 2.0).loo @ y
    for j in range(9):
        keep = np.arange(9) != j
        fit = Ridge(alpha=2.0).fit(Z[keep, 1:], y[keep])
        assert loo[j] == pytest.approx(y[j] - fit.predict(Z[j : j + 1, 1:])[0], abs=1e-10)


def test_shuffling_the_measures_is_shuffling_the_outcomes():
    rng = np.random.default_rng(2)
    measures, _, Y = synthetic_study(rng, n=8, effect=1.0)
    order = rng.permutation(8)
    cands = measure_candidates(list(measures), combine=2)
    shuffled = {k: v[order] for k, v in measures.items()}
    a = nested_run(cands, shuffled, standardise(shuffled), Y, _weights(Y)).mae
    inverse = np.argsort(order)
    b = nested_run(cands, measures, standardise(measures), Y[inverse], _weights(Y)).mae
    assert a == pytest.approx(b, rel=1e-12)


def _rate(effect, *, combine=2, seed=0):
    rng = np.random.default_rng(seed)
    beats = found = naive = 0
    for s in range(N_STUDIES):
        measures, free, Y = synthetic_study(rng, effect=effect)
        options = NestedOptions(permutations=100, combine=combine, seed=s)
        q, *_ = nested_quality(measures, free, Y, _weights(Y), options=options)
        beats += q.beats_baseline
        found += q.beats_baseline and "informative" in q.best
        naive += min(q.loto.values()) < q.baselines["mean"]  # the old, non-nested claim
    return beats / N_STUDIES, found / N_STUDIES, naive / N_STUDIES


def test_noise_measures_beat_the_baseline_at_most_about_the_level():
    # 5 noise measures (+ 10 ridge pairs) over 12 tasks: before nesting and the null, the best
    # of them "beat" ignoring difficulty in most such studies
    beats, _, naive = _rate(0.0)
    assert beats <= 0.10
    assert naive >= 0.35  # what picking the best plain LOTO error claimed on the same studies


def test_one_informative_measure_among_noise_is_found():
    # signal SD = 1.5 x the noise SD (R^2 about 0.7 per method), 12 tasks, 4 methods
    _, found, _ = _rate(1.5, seed=1)
    assert found >= 0.80


def test_coverage_and_baselines_are_reported():
    measures, free, Y = synthetic_study(np.random.default_rng(3), n=15, effect=1.0)
    measures["zero_shot_accuracy"] = measures.pop("noise0")
    q, *_ = nested_quality(measures, free, Y, _weights(Y), options=NestedOptions(permutations=200))
    assert set(q.baselines) == {"mean", "n_classes", "log_n_classes", "zero_shot_accuracy"}
    assert 0.0 <= q.coverage["ols"] <= 1.0 and 0.0 <= q.coverage["jackknife"] <= 1.0
    assert q.interval_method in ("ols", "conformal") and len(q.chosen) == 15
    assert 1 / 201 <= q.p_value <= 1.0
    data = q.to_dict()
    assert data["beats_baseline"] == q.beats_baseline and data["permutations"] == 200


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"permutations": 50}, ConfigError, "permutations=50 is too few.*>= 100"),
        ({"permutations": 1000.5}, ConfigError, "permutations=1000.5 is not an integer"),
        ({"permutations": "many"}, ConfigError, "permutations='many' is not an integer"),
        ({"baselines": ("mean", "n_class")}, UnknownNameError,
         "unknown baseline 'n_class'.*choose from mean, n_classes, log_n_classes"),
        ({"combine": 4}, ConfigError, "must be 1, 2 or 3"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        NestedOptions(**kwargs)


def test_too_few_tasks_names_how_many_are_needed():
    measures, free, Y = synthetic_study(np.random.default_rng(4), n=4)
    with pytest.raises(DataError, match="has 4 task.*needs at least 5"):
        nested_quality(measures, free, Y, _weights(Y))
