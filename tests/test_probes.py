"""The cheap probe measures against scikit-learn: a cross-validated ridge classifier and
leave-one-out cosine k-NN, on the same folds and queries."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.neighbors import KNeighborsClassifier

from clipgap.errors import MetricError
from clipgap.metrics import task_difficulty
from clipgap.metrics.probes import _folds, knn_accuracy, probe_accuracy


def _task(n=400, c=6, d=16, noise=1.5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(c, d))
    y = rng.integers(0, c, n)
    X = 2.0 * (centres[y] + noise * rng.normal(size=(n, d)))  # raw, not unit norm
    return X, y, c


def _unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_probe_accuracy_equals_sklearn_ridge_classifier_on_the_same_folds():
    X, y, c = _task()
    fold = _folds(y, 5, np.random.default_rng(0))
    Xn = _unit(X)
    hits = []
    for f in range(5):
        model = RidgeClassifier(alpha=1.0).fit(Xn[fold != f], y[fold != f])
        hits.append(model.predict(Xn[fold == f]) == y[fold == f])
    want = float(np.mean(np.concatenate(hits)))
    assert 0.3 < want < 0.95  # neither trivial nor hopeless
    assert probe_accuracy(X, y, c) == pytest.approx(want, abs=1.5 / len(y))  # float32: <= 1 flip


def test_folds_are_stratified():
    y = np.repeat(np.arange(4), [50, 30, 20, 10])
    fold = _folds(y, 5, np.random.default_rng(1))
    for k in range(4):
        counts = np.bincount(fold[y == k], minlength=5)
        assert counts.max() - counts.min() <= 1


def test_knn_accuracy_is_exact_leave_one_out_when_every_image_is_a_query():
    X, y, c = _task(n=300)
    Xn = _unit(X)
    model = KNeighborsClassifier(n_neighbors=11, metric="cosine").fit(Xn, y)
    near = model.kneighbors(Xn, return_distance=False)[:, 1:]  # drop the image itself
    votes = np.zeros((len(y), c))
    np.add.at(votes, (np.arange(len(y))[:, None], y[near]), 1.0)
    top = votes.max(axis=1, keepdims=True)
    tied = (votes == top).sum(axis=1) > 1
    want = (votes.argmax(axis=1) == y)[~tied]  # ties are broken by similarity: compare the rest
    got_all = knn_accuracy(X, y, c, k=10, queries=1000)
    assert 0.3 < want.mean() < 0.98
    assert abs(got_all - (want.sum() + 0.5 * tied.sum()) / len(y)) <= tied.sum() / len(y) / 2


def test_knn_query_sample_is_seeded_and_close_to_the_full_answer():
    X, y, c = _task(n=3000, noise=1.2)
    full = knn_accuracy(X, y, c, queries=3000)
    sampled = knn_accuracy(X, y, c, queries=500, random_state=3)
    assert sampled == knn_accuracy(X, y, c, queries=500, random_state=3)
    assert abs(sampled - full) < 4 * np.sqrt(full * (1 - full) / 500)


def test_probes_rank_an_easy_task_above_a_hard_one_and_enter_task_difficulty():
    easy, hard = _task(noise=0.5), _task(noise=3.0)
    for fn in (probe_accuracy, knn_accuracy):
        assert fn(*easy) > fn(*hard) + 0.2
    X, y, c = easy
    got = task_difficulty(X, np.random.default_rng(0).normal(size=(c, X.shape[1])), y)
    assert got["probe_accuracy"] == probe_accuracy(X, y, c)
    assert got["knn_accuracy"] == knn_accuracy(X, y, c)


def test_probes_bad_input_and_degenerate_tasks():
    X, y, c = _task(n=50)
    with pytest.raises(MetricError, match="labels must lie in 0..5"):
        probe_accuracy(X, np.full(50, 9), c)
    with pytest.raises(MetricError, match="non-finite or all-zero row"):
        knn_accuracy(np.zeros_like(X), y, c)
    assert np.isnan(probe_accuracy(X, np.zeros(50, int), c))  # one class
    assert np.isnan(knn_accuracy(X[:5], y[:5], c, k=10))  # fewer images than neighbours
