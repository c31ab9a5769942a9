"""Cheap probes on a task's zero-shot image embeddings: how well a linear classifier and a k-NN
classifier separate the classes (science.md, "Honest prediction": the transferability
literature treats a linear probe as the reference that LogME-style scores approximate).

Both are accuracies in [0, 1], higher = easier task, on L2-normalised rows, seeded with
``random_state`` and fast at N = 50,000, d = 512, C = 100 (bench/measures.py).
"""

from __future__ import annotations

import numpy as np

from clipgap.errors import MetricError
from clipgap.metrics.inputs import chunks

PROBE_FOLDS = 5
PROBE_PENALTY = 1.0
KNN_K = 10
KNN_QUERIES = 500


def _inputs(images, labels, n_classes):
    X = np.array(images, dtype=np.float32)
    if X.ndim != 2:
        raise MetricError(f"image_embeddings must be 2-D (N, d); got shape {X.shape}")
    norms = np.linalg.norm(X, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise MetricError("image_embeddings hold a non-finite or all-zero row")
    X /= norms[:, None]
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(X):
        raise MetricError(f"labels must be 1-D of length {len(X)}; got shape {y.shape}")
    if len(X) and (y.min() < 0 or y.max() >= n_classes):
        raise MetricError(f"labels must lie in 0..{n_classes - 1}")
    return X, y.astype(np.intp)


def _folds(y: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of each row: classes dealt round-robin after a shuffle (stratified)."""
    order = rng.permutation(len(y))
    order = order[np.argsort(y[order], kind="stable")]
    fold = np.empty(len(y), dtype=np.intp)
    fold[order] = np.arange(len(y)) % folds
    return fold


def probe_accuracy(
    images, labels, n_classes: int, *, folds: int = PROBE_FOLDS, penalty: float = PROBE_PENALTY,
    random_state: int = 0,
) -> float:  # fmt: skip
    """Cross-validated accuracy of a ridge (least-squares) classifier on one-hot targets.

    Stratified ``folds``-fold CV over the N rows; per fold, ridge with ``penalty`` on the weights
    (intercept unpenalised: X and targets centred on the training rows, as sklearn's
    ``RidgeClassifier(alpha=penalty)``) and the prediction argmax over classes. The d x d Gram
    and the class sums are formed once per fold and the training side is the total minus the
    fold, so the cost is one O(N d^2) pass plus one d x d solve per fold. Exact (no sampling).
    NaN when fewer than two classes are present or N < 2 * folds.
    """
    X, y = _inputs(images, labels, n_classes)
    n, d = X.shape
    if len(np.unique(y)) < 2 or n < 2 * folds:
        return float("nan")
    fold = _folds(y, folds, np.random.default_rng(random_state))
    parts = [np.flatnonzero(fold == f) for f in range(folds)]
    grams, sums = [], []
    for rows in parts:
        Xf = np.concatenate([X[rows], np.ones((len(rows), 1), np.float32)], axis=1)
        onehot = np.zeros((len(rows), n_classes), np.float32)
        onehot[np.arange(len(rows)), y[rows]] = 1.0
        grams.append((Xf.T @ Xf).astype(np.float64))  # (d+1, d+1): last row = sums, count
        sums.append((Xf.T @ onehot).astype(np.float64))  # (d+1, C): last row = class counts
    G, B = sum(grams), sum(sums)
    correct = 0
    for rows, Gf, Bf in zip(parts, grams, sums, strict=True):
        Gt, Bt = G - Gf, B - Bf
        m = Gt[d, d]
        mu, ybar = Gt[:d, d] / m, Bt[d] / m
        Gc = Gt[:d, :d] - m * np.outer(mu, mu) + penalty * np.eye(d)
        W = np.linalg.solve(Gc, Bt[:d] - m * np.outer(mu, ybar))
        scores = X[rows] @ W.astype(np.float32) + (ybar - mu @ W).astype(np.float32)
        correct += int((scores.argmax(axis=1) == y[rows]).sum())
    return correct / n


def knn_accuracy(
    images, labels, n_classes: int, *, k: int = KNN_K, queries: int = KNN_QUERIES,
    random_state: int = 0,
) -> float:  # fmt: skip
    """Leave-one-out accuracy of a cosine k-NN classifier (majority vote of the ``k`` most
    similar other images; ties go to the class with the larger summed similarity).

    The neighbours are exact (every other image is searched); only *which* images are scored is
    sampled: at most ``queries`` of them, stratified by class with ``random_state`` (all of them
    when N <= ``queries``, which is then the exact leave-one-out accuracy). With 500 queries the
    standard error of the sampled accuracy is at most 2.2 points. NaN when fewer than two classes or N <= k.
    """
    X, y = _inputs(images, labels, n_classes)
    n = len(X)
    if len(np.unique(y)) < 2 or n <= k:
        return float("nan")
    rng = np.random.default_rng(random_state)
    if n <= queries:
        picked = np.arange(n)
    else:
        order = _folds(y, n // queries + 1, rng)
        picked = np.sort(rng.permutation(np.flatnonzero(order == 0))[:queries])
    correct = 0
    for start, stop in chunks(len(picked), 256):
        rows = picked[start:stop]
        sims = X[rows] @ X.T  # (q, N)
        sims[np.arange(len(rows)), rows] = -np.inf  # leave the query itself out
        near = np.argpartition(sims, n - k, axis=1)[:, n - k :]
        top = np.take_along_axis(sims, near, axis=1)
        votes = np.zeros((len(rows), n_classes))
        np.add.at(votes, (np.arange(len(rows))[:, None], y[near]), 1.0 + 1e-3 * top)
        correct += int((votes.argmax(axis=1) == y[rows]).sum())
    return correct / len(picked)
