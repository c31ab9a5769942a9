"""Exact difficulty metrics on embeddings: silhouette score and the task-difficulty measures.

Pure numpy functions in the scikit-learn manner: data first, keyword-only options, inputs
validated with :class:`~clipgap.errors.MetricError`. Definitions follow ``docs/science.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from scipy import sparse

from clipgap.errors import MetricError, UnknownNameError
from clipgap.registry import Registry

# A silhouette backend (X, codes, counts, chunk_size) yields, per block of rows, the block's
# (rows, K) distance sums to each cluster excluding the point itself, and the rows' codes.
Block = tuple[np.ndarray, np.ndarray]
SumsFn = Callable[[np.ndarray, np.ndarray, np.ndarray, int], Iterator[Block]]
silhouette_metrics: Registry[SumsFn] = Registry("silhouette metric")

_BLOCK_ELEMENTS = 2**22  # float64 elements per working block (32 MiB) when chunk_size is None
_COSINE_ZERO = 1e-12  # mean cosine distances below this are rounding noise around 0


def silhouette_score(X, labels, *, metric: str = "cosine", chunk_size: int | None = None) -> float:
    """Mean silhouette coefficient of all samples, exact (no subsampling).

    Equal to ``sklearn.metrics.silhouette_score(X, labels, metric=metric)`` (Rousseeuw 1987:
    a(i) is the mean distance to the other members of i's cluster, b(i) the smallest mean
    distance to another cluster, s(i) = (b - a) / max(a, b), singleton clusters score 0).

    ``metric="cosine"`` normalises rows and uses that a cluster's cosine-distance sum from x_i
    is n_k - x_i . S_k (S_k the cluster's vector sum): O(N K d) time, O(K d + chunk K) memory
    beyond the input, float64 throughout. ``metric="euclidean"`` is the exact O(N^2 d) pairwise
    computation in row blocks. ``chunk_size`` is the number of rows per block (default: blocks
    of about 32 MiB).

    Returns a float in [-1, 1]: near 1 = compact, well-separated clusters; near 0 = overlapping;
    negative = points closer to another cluster than to their own.
    """
    try:
        sums_fn = silhouette_metrics.get(metric)
    except UnknownNameError as err:
        raise MetricError(str(err)) from None
    X = _check_matrix(X, "X")
    codes, counts = _encode_labels(labels, X.shape[0])
    if chunk_size is None:
        width = X.shape[0] if metric == "euclidean" else max(len(counts), X.shape[1])
        chunk_size = max(1, _BLOCK_ELEMENTS // max(width, 1))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer):
        raise MetricError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    if chunk_size < 1:
        raise MetricError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    tiny = _COSINE_ZERO if metric == "cosine" else 0.0
    total = 0.0
    for sums, own in sums_fn(X, codes, counts, int(chunk_size)):
        total += float(_chunk_silhouettes(sums, own, counts, tiny).sum())
    return total / X.shape[0]


def _check_matrix(X, name: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise MetricError(f"{name} must be a non-empty 2-D array (n_samples, dim); got {X.shape}")
    if X.dtype.kind not in "iuf":
        raise MetricError(f"{name} must hold real numbers; got dtype {X.dtype}")
    return X


def _encode_labels(labels, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels -> (codes in 0..K-1, cluster sizes), checking sklearn's 2 <= K <= n - 1 rule."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n_samples:
        raise MetricError(
            f"labels must be 1-D with one entry per row of X ({n_samples}); got shape "
            f"{labels.shape}"
        )
    try:
        _, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    except TypeError:
        raise MetricError(f"labels must be mutually comparable; got dtype {labels.dtype}") from None
    if not 2 <= len(counts) <= n_samples - 1:
        raise MetricError(
            f"silhouette needs 2 to n_samples - 1 = {n_samples - 1} clusters; got "
            f"{len(counts)} cluster(s) for {n_samples} samples"
        )
    return codes.reshape(-1), counts


def _first_bad_row(block: np.ndarray, start: int, name: str = "X") -> None:
    bad = ~np.isfinite(block).all(axis=1)
    if bad.any():
        raise MetricError(f"{name} row {start + int(np.argmax(bad))} contains NaN or inf")


def _chunk_silhouettes(
    sums: np.ndarray, own: np.ndarray, counts: np.ndarray, tiny: float
) -> np.ndarray:
    """s(i) for a block: ``sums[r, k]`` = distance sum from row r to cluster k, self excluded."""
    rows = np.arange(len(own))
    n_own = counts[own]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[rows, own] / (n_own - 1)
        means = sums / counts
        means[rows, own] = np.inf
        b = means.min(axis=1)
        if tiny:
            a = np.where(a < tiny, 0.0, a)
            b = np.where(b < tiny, 0.0, b)
        denom = np.maximum(a, b)
        sil = (b - a) / denom
    return np.where((n_own == 1) | (denom <= 0), 0.0, sil)


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


def _row_norms(block: np.ndarray, start: int, name: str) -> np.ndarray:
    """L2 norms of a float64 block; a row with NaN/inf, overflow or zero norm is an error."""
    norms = np.sqrt(np.einsum("ij,ij->i", block, block))
    bad = ~np.isfinite(norms)
    if bad.any():
        i = int(np.argmax(bad))
        what = "has a norm that overflows float64"
        if not np.isfinite(block[i]).all():
            what = "contains NaN or inf"
        raise MetricError(f"{name} row {start + i} {what}")
    zero = norms == 0
    if zero.any():
        row = start + int(np.argmax(zero))
        raise MetricError(f"{name} row {row} has zero norm; cosine distance is undefined for it")
    return norms


def _normalised_block(X: np.ndarray, start: int, stop: int | None, name: str = "X") -> np.ndarray:
    """Rows start:stop of X as float64 unit vectors (validated by :func:`_row_norms`)."""
    block = np.asarray(X[start:stop], dtype=np.float64)
    return block / _row_norms(block, start, name)[:, None]


@silhouette_metrics.register("cosine")
def _cosine_sums(X, codes, counts, chunk_size):
    """Per-cluster cosine-distance sums n_k - x^ . S_k (x^ = x / |x|); two passes, O(N K d).

    Pass 1 accumulates the cluster sums S_k of unit vectors (a sparse (K, rows) matrix of
    1/|x| weights times the raw block); pass 2 forms (rows, K) blocks of x^ . S_k. The point's
    own term 1 - x^ . x^ is 0 up to rounding, so the own-cluster sum already excludes it.
    """
    n, k = X.shape[0], len(counts)
    norms = np.empty(n)
    cluster_sums = np.zeros((k, X.shape[1]))
    for start, stop in _chunks(n, chunk_size):
        block = np.asarray(X[start:stop], dtype=np.float64)
        norms[start:stop] = _row_norms(block, start, "X")
        where = (codes[start:stop], np.arange(stop - start))
        weights = sparse.csr_array((1.0 / norms[start:stop], where), shape=(k, stop - start))
        cluster_sums += weights @ block
    for start, stop in _chunks(n, chunk_size):
        block = np.asarray(X[start:stop], dtype=np.float64)
        sums = counts[None, :] - (block @ cluster_sums.T) / norms[start:stop, None]
        np.maximum(sums, 0.0, out=sums)
        yield sums, codes[start:stop]


@silhouette_metrics.register("euclidean")
def _euclidean_sums(X, codes, counts, chunk_size):
    """Exact pairwise Euclidean distances in row blocks, summed per cluster; O(N^2 d)."""
    Xf = np.asarray(X, dtype=np.float64)
    for start, stop in _chunks(Xf.shape[0], chunk_size):
        _first_bad_row(Xf[start:stop], start)
    order = np.argsort(codes, kind="stable")
    Xs, cs = Xf[order], codes[order]
    sq = np.einsum("ij,ij->i", Xs, Xs)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for start, stop in _chunks(Xs.shape[0], chunk_size):
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (Xs[start:stop] @ Xs.T)
        np.maximum(d2, 0.0, out=d2)
        dist = np.sqrt(d2, out=d2)
        rows = np.arange(stop - start)
        dist[rows, start + rows] = 0.0
        yield np.add.reduceat(dist, starts, axis=1), cs[start:stop]


def _class_labels(labels, n_images: int, n_classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n_images:
        raise MetricError(
            f"labels must be 1-D with one entry per image ({n_images}); got shape {y.shape}"
        )
    if y.dtype.kind not in "iu":
        raise MetricError(f"labels must be integers in 0..{n_classes - 1}; got dtype {y.dtype}")
    y = y.astype(np.int64)
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise MetricError(f"labels[{i}] = {y[i]} is outside 0..{n_classes - 1} (n_classes)")
    return y


def _image_side(
    images: np.ndarray, texts: np.ndarray, y: np.ndarray
) -> tuple[float, float, np.ndarray]:
    """(ACS, zero-shot accuracy, mean normalised image) in row blocks of bounded memory."""
    n = images.shape[0]
    size = max(1, _BLOCK_ELEMENTS // max(texts.shape[0], texts.shape[1]))
    cos_sum, correct, vec_sum = 0.0, 0, np.zeros(texts.shape[1])
    for start, stop in _chunks(n, size):
        block = _normalised_block(images, start, stop, "image_embeddings")
        cos = block @ texts.T
        own = y[start:stop]
        cos_sum += float(cos[np.arange(stop - start), own].sum())
        correct += int((cos.argmax(axis=1) == own).sum())
        vec_sum += block.sum(axis=0)
    return cos_sum / n, correct / n, vec_sum / n


def task_difficulty(image_embeddings, text_embeddings, labels) -> dict:
    """Difficulty of a task for a zero-shot CLIP, on L2-normalised embeddings (science.md).

    ``image_embeddings`` (N, d), raw or normalised; ``text_embeddings`` (C, d), one class text
    embedding per class; ``labels`` (N,) integers in 0..C-1. Returns python numbers:

    - ``silhouette_modality`` in [-1, 1]: cosine silhouette of [images; texts] with the
      modality as cluster label. High = image and text clouds far apart (misaligned task).
      NaN when N == C == 1 (two points cannot form two clusters with a silhouette).
    - ``silhouette_class`` in [-1, 1]: same stack, image label = its class, text c in cluster
      c. NaN when C == 1 (a single cluster has no silhouette).
    - ``acs`` in [-1, 1]: mean cos(image_i, text_{y_i}).
    - ``zero_shot_accuracy`` in [0, 1]: top-1 of argmax_c cos(image_i, text_c) (ties: lowest c).
    - ``modality_gap`` in [0, 2]: ||mean(images) - mean(texts)||_2.
    - ``n_images`` (N) and ``n_classes`` (C).
    """
    images = _check_matrix(image_embeddings, "image_embeddings")
    raw_texts = _check_matrix(text_embeddings, "text_embeddings")
    texts = _normalised_block(raw_texts, 0, None, "text_embeddings")
    if images.shape[1] != texts.shape[1]:
        raise MetricError(
            f"image_embeddings dim {images.shape[1]} != text_embeddings dim {texts.shape[1]}"
        )
    n, c = images.shape[0], texts.shape[0]
    y = _class_labels(labels, n, c)
    acs, accuracy, image_mean = _image_side(images, texts, y)
    # Silhouette normalises rows itself, so the stack keeps the inputs' precision (no copy to
    # float64 of the N image rows).
    stacked = np.concatenate([images, raw_texts], dtype=np.result_type(images, raw_texts, "f4"))
    modality = np.concatenate([np.zeros(n, dtype=np.int64), np.ones(c, dtype=np.int64)])
    ss_modality = silhouette_score(stacked, modality) if n + c >= 3 else float("nan")
    classes = np.concatenate([y, np.arange(c)])
    ss_class = silhouette_score(stacked, classes) if c >= 2 else float("nan")
    return {
        "silhouette_modality": float(ss_modality),
        "silhouette_class": float(ss_class),
        "acs": acs,
        "zero_shot_accuracy": accuracy,
        "modality_gap": float(np.linalg.norm(image_mean - texts.mean(axis=0))),
        "n_images": int(n),
        "n_classes": int(c),
    }
