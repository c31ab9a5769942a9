"""Input checks shared by the measures, and the float64 unit-row blocks they all read.

Every bad input raises :class:`~clipgap.errors.MetricError` with one line naming the argument,
the row or entry, and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from clipgap.errors import MetricError

# Rows per working block: a float64 block of this many bytes stays in the CPU cache between
# the few operations done on it (copy, norms, sums), which saves a trip to memory each.
BLOCK_BYTES = 2**21
# Rows per BLAS product: few, large calls. Each multithreaded call synchronises its threads,
# which on a busy machine costs far more than the arithmetic of a cache-sized block.
STAGE_BYTES = 2**24


def check_matrix(X, name: str) -> np.ndarray:
    """``X`` as a non-empty 2-D array of real numbers (not copied)."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise MetricError(f"{name} must be a non-empty 2-D array (n_samples, dim); got {X.shape}")
    if X.dtype.kind not in "iuf":
        raise MetricError(f"{name} must hold real numbers; got dtype {X.dtype}")
    return X


def encode_labels(labels, n_samples: int, rows_of: str = "X") -> tuple[np.ndarray, np.ndarray]:
    """Any comparable labels -> (codes in 0..K-1 in sorted label order, size of each class)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n_samples:
        raise MetricError(
            f"labels must be 1-D with one entry per row of {rows_of} ({n_samples}); got shape "
            f"{labels.shape}"
        )
    try:
        _, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    except TypeError:
        raise MetricError(f"labels must be mutually comparable; got dtype {labels.dtype}") from None
    return codes.reshape(-1).astype(np.intp, copy=False), counts


def class_labels(labels, n_images: int, n_classes: int) -> np.ndarray:
    """Integer class indices into the ``n_classes`` class texts, one per image."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n_images:
        raise MetricError(
            f"labels must be 1-D with one entry per image ({n_images}); got shape {y.shape}"
        )
    if y.dtype.kind not in "iu":
        raise MetricError(f"labels must be integers in 0..{n_classes - 1}; got dtype {y.dtype}")
    y = y.astype(np.intp)
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise MetricError(f"labels[{i}] = {y[i]} is outside 0..{n_classes - 1} (n_classes)")
    return y


def check_classes(counts: np.ndarray, what: str) -> None:
    """A measure comparing classes needs at least two of them."""
    present = int((counts > 0).sum())
    if present < 2:
        raise MetricError(f"{what} needs labels with at least 2 classes; got {present}")


def first_bad_row(block: np.ndarray, start: int, name: str = "X") -> None:
    bad = ~np.isfinite(block).all(axis=1)
    if bad.any():
        raise MetricError(f"{name} row {start + int(np.argmax(bad))} contains NaN or inf")


def chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


def block_rows(width: int) -> int:
    """Rows per float64 working block of ``width`` columns (see :data:`BLOCK_BYTES`)."""
    return max(1, BLOCK_BYTES // (8 * max(width, 1)))


def row_norms(block: np.ndarray, start: int, name: str) -> np.ndarray:
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
        raise MetricError(f"{name} row {row} has zero norm; it cannot be L2-normalised")
    return norms


def normalised_rows(X: np.ndarray, start: int = 0, stop: int | None = None, name: str = "X"):
    """Rows start:stop of X as a new float64 array of unit vectors (checked by row_norms)."""
    block = np.array(X[start:stop], dtype=np.float64)
    block /= row_norms(block, start, name)[:, None]
    return block


def unit_blocks(
    X: np.ndarray, name: str, *, staged: bool = False
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray | None]]:
    """(start, stop, block, stage) over X: float64 unit rows, every row checked by row_norms.

    Blocks are cache-sized (:data:`BLOCK_BYTES`) views into one reused buffer: a consumer may
    change them in place but must not keep them. With ``staged``, the buffer holds a stage of
    :data:`STAGE_BYTES` and ``stage`` is, with the last block of each stage, the view of all its
    rows as the consumer left them (for one large BLAS product per stage); otherwise None.
    """
    n, d = X.shape
    rows = block_rows(d)
    stage_rows = max(rows, STAGE_BYTES // (8 * d)) if staged else rows
    buffer = np.empty((min(stage_rows, n), d))
    for first, end in chunks(n, stage_rows):
        stage = buffer[: end - first]
        for start, stop in chunks(end - first, rows):
            block = stage[start:stop]
            block[...] = X[first + start : first + stop]
            block /= row_norms(block, first + start, name)[:, None]
            yield first + start, first + stop, block, stage if stop == end - first else None
