"""Exact silhouette score: O(N K d) for cosine distance, blockwise O(N^2 d) for Euclidean.

Equal to ``sklearn.metrics.silhouette_score`` without its O(N^2) memory or time (for cosine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from clipgap.errors import MetricError, UnknownNameError
from clipgap.metrics.inputs import (
    STAGE_BYTES,
    block_rows,
    check_matrix,
    chunks,
    encode_labels,
    first_bad_row,
    row_norms,
)
from clipgap.metrics.moments import add_by_class
from clipgap.registry import Registry

# A silhouette backend (X, codes, counts, chunk_size) yields, per block of rows, the block's
# (rows, K) distance sums to each cluster excluding the point itself, and the rows' codes.
Block = tuple[np.ndarray, np.ndarray]
SumsFn = Callable[[np.ndarray, np.ndarray, np.ndarray, int], Iterator[Block]]
silhouette_metrics: Registry[SumsFn] = Registry("silhouette metric")

_EUCLIDEAN_BLOCK = 2**22  # float64 elements per (rows, N) distance block for "euclidean"
_COSINE_BLOCK = STAGE_BYTES // 8  # float64 elements per cosine product block (few BLAS calls)
_COSINE_ZERO = 1e-12  # mean cosine distances below this are rounding noise around 0


def silhouette_score(X, labels, *, metric: str = "cosine", chunk_size: int | None = None) -> float:
    """Mean silhouette coefficient of all samples, exact (no subsampling).

    Equal to ``sklearn.metrics.silhouette_score(X, labels, metric=metric)`` (Rousseeuw 1987:
    a(i) is the mean distance to the other members of i's cluster, b(i) the smallest mean
    distance to another cluster, s(i) = (b - a) / max(a, b), singleton clusters score 0).

    ``metric="cosine"`` uses that a cluster's cosine-distance sum from x_i is
    n_k - x_i . S_k / |x_i| (S_k the cluster's sum of unit vectors): two passes over X in
    float64 row blocks, O(N K d) time, O(K d + chunk (K + d)) memory beyond the input.
    ``metric="euclidean"`` is the exact O(N^2 d) pairwise computation in row blocks.
    ``chunk_size`` is the number of rows per block (default: about 16 MiB of float64 rows for
    cosine, whose first pass works through each block in cache-sized pieces; about 32 MiB of
    distances for euclidean).

    Returns a float in [-1, 1]: near 1 = compact, well-separated clusters; near 0 = overlapping;
    negative = points closer to another cluster than to their own.
    """
    try:
        sums_fn = silhouette_metrics.get(metric)
    except UnknownNameError as err:
        raise MetricError(str(err)) from None
    X = check_matrix(X, "X")
    codes, counts = _encode_clusters(labels, X.shape[0])
    if chunk_size is None:
        if metric == "euclidean":
            chunk_size = max(1, _EUCLIDEAN_BLOCK // X.shape[0])
        else:
            chunk_size = max(1, _COSINE_BLOCK // max(len(counts), X.shape[1]))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer):
        raise MetricError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    if chunk_size < 1:
        raise MetricError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    tiny = _COSINE_ZERO if metric == "cosine" else 0.0
    total = 0.0
    for sums, own in sums_fn(X, codes, counts, int(chunk_size)):
        total += float(_chunk_silhouettes(sums, own, counts, tiny).sum())
    return total / X.shape[0]


def _encode_clusters(labels, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels -> (codes in 0..K-1, cluster sizes), checking sklearn's 2 <= K <= n - 1 rule."""
    codes, counts = encode_labels(labels, n_samples)
    if not 2 <= len(counts) <= n_samples - 1:
        raise MetricError(
            f"silhouette needs 2 to n_samples - 1 = {n_samples - 1} clusters; got "
            f"{len(counts)} cluster(s) for {n_samples} samples"
        )
    return codes, counts


def _chunk_silhouettes(
    sums: np.ndarray, own: np.ndarray, counts: np.ndarray, tiny: float
) -> np.ndarray:
    """s(i) for a block: ``sums[r, k]`` = distance sum from row r to cluster k, self excluded
    (float64; overwritten)."""
    rows = np.arange(len(own))
    n_own = counts[own]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[rows, own] / (n_own - 1)
        means = np.divide(sums, counts, out=sums)  # the block's sums are not used again
        means[rows, own] = np.inf
        b = means.min(axis=1)
        if tiny:
            a = np.where(a < tiny, 0.0, a)
            b = np.where(b < tiny, 0.0, b)
        denom = np.maximum(a, b)
        sil = (b - a) / denom
    return np.where((n_own == 1) | (denom <= 0), 0.0, sil)


@silhouette_metrics.register("cosine")
def _cosine_sums(X, codes, counts, chunk_size):
    """Per-cluster cosine-distance sums n_k - x . S_k / |x|; two passes, O(N K d).

    Pass 1 accumulates the norms and the cluster sums S_k of unit vectors (a sparse one-hot
    matrix weighted by 1/|x|, times the raw rows) in cache-sized pieces that each stay in cache
    for the steps on them; pass 2 forms (rows, K) blocks of x . S_k / |x|, one BLAS product per
    block. Rows are copied into one reused float64 buffer. The point's own term 1 - x^ . x^ is
    0 up to rounding, so the own-cluster sum already excludes it.
    """
    n, k = X.shape[0], len(counts)
    norms = np.empty(n)
    cluster_sums = np.zeros((k, X.shape[1]))
    buffer = np.empty((min(chunk_size, n), X.shape[1]))
    for start, stop in chunks(n, min(chunk_size, block_rows(X.shape[1]))):
        block = buffer[: stop - start]
        block[...] = X[start:stop]
        norms[start:stop] = row_norms(block, start, "X")
        add_by_class(cluster_sums, codes[start:stop], block, 1.0 / norms[start:stop])
    for start, stop in chunks(n, chunk_size):
        block = buffer[: stop - start]
        block[...] = X[start:stop]
        sums = block @ cluster_sums.T
        sums /= norms[start:stop, None]
        np.subtract(counts, sums, out=sums)
        np.maximum(sums, 0.0, out=sums)
        yield sums, codes[start:stop]


@silhouette_metrics.register("euclidean")
def _euclidean_sums(X, codes, counts, chunk_size):
    """Exact pairwise Euclidean distances in row blocks, summed per cluster; O(N^2 d)."""
    Xf = np.asarray(X, dtype=np.float64)
    for start, stop in chunks(Xf.shape[0], chunk_size):
        first_bad_row(Xf[start:stop], start)
    order = np.argsort(codes, kind="stable")
    Xs, cs = Xf[order], codes[order]
    sq = np.einsum("ij,ij->i", Xs, Xs)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for start, stop in chunks(Xs.shape[0], chunk_size):
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (Xs[start:stop] @ Xs.T)
        np.maximum(d2, 0.0, out=d2)
        dist = np.sqrt(d2, out=d2)
        rows = np.arange(stop - start)
        dist[rows, start + rows] = 0.0
        yield np.add.reduceat(dist, starts, axis=1), cs[start:stop]
