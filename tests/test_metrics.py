"""Exact silhouette against sklearn, and task_difficulty against direct numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import silhouette_score as sk_silhouette

from clipgap.errors import ClipgapError, MetricError
from clipgap.metrics import silhouette_score, task_difficulty


def _blobs(n, k, d, *, seed, spread=1.0):
    """n points around k random centres, every cluster non-empty, unequal sizes."""
    rng = np.random.default_rng(seed)
    sizes = rng.dirichlet(np.ones(k) * 0.7) * (n - k)
    labels = np.repeat(np.arange(k), 1 + np.floor(sizes).astype(int))
    labels = np.concatenate([labels, rng.integers(0, k, n - len(labels))])
    rng.shuffle(labels)
    centres = rng.normal(size=(k, d))
    return centres[labels] + spread * rng.normal(size=(n, d)), labels


CASES = {
    "two_clusters": _blobs(120, 2, 6, seed=0),
    "five_unequal": _blobs(300, 5, 16, seed=1, spread=2.0),
    "many_clusters": _blobs(150, 60, 8, seed=2),
    "overlapping": _blobs(200, 4, 3, seed=3, spread=5.0),
}


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("chunk_size", [None, 1, 37])
def test_silhouette_matches_sklearn(case, metric, chunk_size):
    X, labels = CASES[case]
    ours = silhouette_score(X, labels, metric=metric, chunk_size=chunk_size)
    assert isinstance(ours, float)
    assert ours == pytest.approx(sk_silhouette(X, labels, metric=metric), abs=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_silhouette_singletons_and_duplicates(metric):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(80, 5))
    X[10:20] = X[3]  # duplicate points, spread over several clusters
    X[40:43] = X[41]
    labels = rng.integers(0, 6, 80)
    labels[[5, 6, 7]] = [100, 101, 102]  # three singleton clusters (score 0 each)
    ours = silhouette_score(X, labels, metric=metric, chunk_size=9)
    assert ours == pytest.approx(sk_silhouette(X, labels, metric=metric), abs=1e-6)


def test_silhouette_all_singletons_but_one_pair_is_zero():
    X = np.random.default_rng(5).normal(size=(6, 3))
    labels = np.array([0, 0, 1, 2, 3, 4])  # K = n - 1 is allowed
    expected = sk_silhouette(X, labels, metric="cosine")
    assert silhouette_score(X, labels) == pytest.approx(expected, abs=1e-12)


def test_silhouette_known_value_and_scale_invariance():
    # Two tight pairs on orthogonal axes: a = 0, b = 1 for every point -> score 1.
    X = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 0.5]])
    assert silhouette_score(X, ["a", "a", "b", "b"]) == pytest.approx(1.0, abs=1e-12)
    Y, labels = CASES["five_unequal"]
    scaled = Y * np.random.default_rng(6).uniform(0.1, 10.0, size=(len(Y), 1))
    assert silhouette_score(scaled, labels) == pytest.approx(silhouette_score(Y, labels))


def test_silhouette_float32_input_and_label_types():
    X, labels = CASES["two_clusters"]
    expected = sk_silhouette(X.astype(np.float32).astype(np.float64), labels, metric="cosine")
    got = silhouette_score(X.astype(np.float32), [f"class-{v}" for v in labels])
    assert got == pytest.approx(expected, abs=1e-9)


def test_silhouette_identical_clusters_score_zero():
    X = np.tile([[1.0, 2.0, 3.0]], (6, 1))
    assert silhouette_score(X, [0, 0, 0, 1, 1, 1]) == 0.0


@pytest.mark.parametrize(
    ("X", "labels", "kwargs", "match"),
    [
        (np.array([[1.0, 0], [np.nan, 1], [1, 1]]), [0, 1, 1], {}, "X row 1 contains NaN"),
        (np.array([[1.0, 0], [0, 1], [np.inf, 1]]), [0, 1, 1], {}, "X row 2 contains NaN or inf"),
        (np.array([[1.0, 0], [1, 1], [np.inf, 1]]), [0, 1, 1], {"metric": "euclidean"}, "row 2"),
        (np.array([[1.0, 0], [0, 1], [0, 0]]), [0, 1, 1], {}, "X row 2 has zero norm"),
        (np.array([[1.0, 0], [0, 1], [1, 1]]), [0, 0, 0], {}, "got 1 cluster"),
        (np.array([[1.0, 0], [0, 1], [1, 1]]), [0, 1, 2], {}, "2 to n_samples - 1 = 2"),
        (np.array([[1.0, 0], [0, 1], [1, 1]]), [0, 1], {}, r"one entry per row of X \(3\)"),
        (np.array([[1.0, 0], [0, 1], [1, 1]]), [0, 1, 1], {"metric": "cosin"}, "choose from"),
        (np.array([[1.0, 0], [0, 1], [1, 1]]), [0, 1, 1], {"chunk_size": 0}, "chunk_size"),
        (np.array([[1.0, 0], [0, 1], [1, 1]]), [0, 1, 1], {"chunk_size": 2.5}, "chunk_size"),
        (np.array([1.0, 0, 1]), [0, 1, 1], {}, "2-D array"),
        (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), [0, 1, 1], {}, "real numbers"),
    ],
)
def test_silhouette_bad_input(X, labels, kwargs, match):
    with pytest.raises(MetricError, match=match) as info:
        silhouette_score(X, labels, **kwargs)
    assert isinstance(info.value, ClipgapError)
    assert "\n" not in str(info.value)


def test_unknown_metric_lists_valid_ones():
    with pytest.raises(MetricError) as info:
        silhouette_score(np.eye(3), [0, 1, 1], metric="manhattan")
    assert "cosine" in str(info.value) and "euclidean" in str(info.value)


def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _direct_difficulty(images, texts, labels):
    """The science.md definitions computed plainly, with sklearn for the silhouettes."""
    im, tx = _unit(images), _unit(texts)
    stacked = np.vstack([im, tx])
    cos = im @ tx.T
    n, c = len(im), len(tx)
    return {
        "silhouette_modality": sk_silhouette(stacked, [0] * n + [1] * c, metric="cosine"),
        "silhouette_class": sk_silhouette(
            stacked, np.concatenate([labels, np.arange(c)]), metric="cosine"
        ),
        "acs": np.mean([cos[i, labels[i]] for i in range(n)]),
        "zero_shot_accuracy": np.mean(np.argmax(cos, axis=1) == labels),
        "modality_gap": np.linalg.norm(im.mean(0) - tx.mean(0)),
        "n_images": n,
        "n_classes": c,
    }


TRANSFER_KEYS = {"iimm", "logme", "hscore", "transrate", "gbc"}
PROBE_KEYS = {"probe_accuracy", "knn_accuracy"}  # tests/test_probes.py


def _task(n=60, c=5, d=12, seed=7, noise=0.8):
    rng = np.random.default_rng(seed)
    texts = rng.normal(size=(c, d))
    labels = rng.integers(0, c, n)
    images = 3.0 * (texts[labels] + noise * rng.normal(size=(n, d)))  # raw, not unit norm
    return images, texts, labels


def test_task_difficulty_matches_direct_computation():
    images, texts, labels = _task()
    got = task_difficulty(images, texts, labels)
    want = _direct_difficulty(images, texts, labels)
    assert set(got) == set(want) | TRANSFER_KEYS | PROBE_KEYS  # tested in their own files
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    assert type(got["n_images"]) is int and type(got["acs"]) is float
    assert 0.0 < got["zero_shot_accuracy"] < 1.0  # the noise makes some images ambiguous


def test_task_difficulty_float32_and_list_labels():
    images, texts, labels = _task(seed=8)
    got = task_difficulty(images.astype(np.float32), texts.astype(np.float32), labels.tolist())
    want = _direct_difficulty(
        images.astype(np.float32).astype(np.float64),
        texts.astype(np.float32).astype(np.float64),
        labels,
    )
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key


def test_images_on_their_class_texts():
    rng = np.random.default_rng(9)
    texts = _unit(rng.normal(size=(4, 8)))
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3, 1, 1])
    images = texts[labels] * rng.uniform(0.5, 2.0, size=(10, 1))
    got = task_difficulty(images, texts, labels)
    assert got["acs"] == pytest.approx(1.0, abs=1e-12)
    assert got["zero_shot_accuracy"] == 1.0
    # Images and texts coincide per class, so class clusters are points: a = 0 -> ss = 1.
    assert got["silhouette_class"] == pytest.approx(1.0, abs=1e-9)
    mean_images = texts[labels].mean(0)
    assert got["modality_gap"] == pytest.approx(np.linalg.norm(mean_images - texts.mean(0)))


def test_single_class_gives_nan_class_silhouette():
    images, texts, _ = _task(n=20, c=1)
    got = task_difficulty(images, texts, np.zeros(20, dtype=int))
    assert np.isnan(got["silhouette_class"])
    assert got["zero_shot_accuracy"] == 1.0
    want = sk_silhouette(np.vstack([_unit(images), _unit(texts)]), [0] * 20 + [1], metric="cosine")
    assert got["silhouette_modality"] == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda im, tx, y: (im, tx, np.where(y == 0, 5, y)), r"labels\[\d+\] = 5 is outside 0..4"),
        (lambda im, tx, y: (im, tx, -np.ones_like(y)), r"labels\[0\] = -1"),
        (lambda im, tx, y: (im, tx, y.astype(float)), "labels must be integers"),
        (lambda im, tx, y: (im, tx, y[:-1]), r"one entry per image \(60\)"),
        (lambda im, tx, y: (im[:, :-1], tx, y), "dim 11 != text_embeddings dim 12"),
        (
            lambda im, tx, y: (im, np.vstack([tx[:2], 0 * tx[:1], tx[3:]]), y),
            "text_embeddings row 2",
        ),
        (
            lambda im, tx, y: (np.vstack([im[:7], np.nan * im[:1], im[8:]]), tx, y),
            "image_embeddings row 7",
        ),
        (lambda im, tx, y: (np.vstack([im[:3], 0 * im[:1], im[4:]]), tx, y), "row 3 has zero norm"),
    ],
)
def test_task_difficulty_bad_input(change, match):
    with pytest.raises(MetricError, match=match):
        task_difficulty(*change(*_task()))
