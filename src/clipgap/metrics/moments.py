"""Per-class sums, squares and scatter of L2-normalised embeddings, in one blockwise pass.

Every O(N) measure in this package reads the images through :func:`class_moments` once and
then works on (K, d) and (d, d) arrays only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.linalg import blas

from clipgap.metrics.inputs import unit_blocks


@dataclass(frozen=True)
class ClassMoments:
    """Sums over the unit rows x_i of each class k, taken about a fixed shift s (float64).

    ``counts`` (K,) rows per class; ``shift`` (d,) = s; ``sums`` (K, d) = sum_{i in k} (x_i - s);
    ``squares`` (K, d) = sum_{i in k} (x_i - s)^2 elementwise, or None; ``gram`` (d, d) =
    sum_i (x_i - s)(x_i - s)^T, or None. s is the mean of the first block of rows, so centred
    statistics derived here lose no precision to cancellation.
    """

    counts: np.ndarray
    shift: np.ndarray
    sums: np.ndarray
    squares: np.ndarray | None = None
    gram: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def dim(self) -> int:
        return self.shift.shape[0]

    def offset(self) -> np.ndarray:
        """mean(x) - s."""
        return self.sums.sum(axis=0) / self.n

    def mean(self) -> np.ndarray:
        """mean(x) over all rows."""
        return self.shift + self.offset()

    def raw_sums(self) -> np.ndarray:
        """(K, d) sum_{i in k} x_i."""
        return self.sums + self.counts[:, None] * self.shift

    def centred_means(self) -> np.ndarray:
        """(K, d) class mean minus overall mean (present classes only: see :meth:`present`)."""
        return self.sums / self.counts[:, None] - self.offset()

    def class_variances(self) -> np.ndarray:
        """(K, d) per-dimension variance of each class (ddof 0)."""
        centre = self.sums / self.counts[:, None]
        return np.maximum(self.squares / self.counts[:, None] - centre**2, 0.0)

    def scatter(self) -> np.ndarray:
        """(d, d) sum_i (x_i - mean)(x_i - mean)^T = N Cov(X)."""
        delta = self.offset()
        return self.gram - self.n * np.outer(delta, delta)

    def present(self) -> ClassMoments:
        """The same moments without the classes that have no rows."""
        keep = self.counts > 0
        if keep.all():
            return self
        squares = None if self.squares is None else self.squares[keep]
        return ClassMoments(self.counts[keep], self.shift, self.sums[keep], squares, self.gram)


def class_moments(
    X: np.ndarray,
    codes: np.ndarray,
    n_classes: int,
    *,
    name: str = "images",
    squares: bool = False,
    gram: bool = False,
) -> ClassMoments:
    """:class:`ClassMoments` of the L2-normalised rows of X grouped by ``codes`` (0..K-1).

    One pass over X in cache-sized float64 blocks (rows checked finite and non-zero): O(N d)
    for sums and squares, O(N d^2) for the Gram matrix (one BLAS syrk per stage of blocks).
    """
    n, d = X.shape
    counts = np.bincount(codes, minlength=n_classes)
    sums = np.zeros((n_classes, d))
    sq = np.zeros((n_classes, d)) if squares else None
    upper = np.zeros((d, d), order="F") if gram else None
    shift = None
    for start, stop, block, stage in unit_blocks(X, name, staged=gram):
        if shift is None:
            shift = block.mean(axis=0)
        block -= shift
        own = codes[start:stop]
        add_by_class(sums, own, block)
        if sq is not None:
            add_by_class(sq, own, np.square(block))
        if upper is not None and stage is not None:
            gram_upper(stage, out=upper)
    scatter = None if upper is None else symmetric(upper)
    return ClassMoments(counts, shift, sums, sq, scatter)


def add_by_class(out: np.ndarray, codes: np.ndarray, block: np.ndarray, weights=None) -> None:
    """out[k] += sum of weights[r] * block[r] over the rows r with codes[r] == k (in place).

    A sparse one-hot (K, rows) matrix times the block: O(rows d) whatever K (faster than a
    dense one-hot product even for K = 10). ``weights`` default to 1.
    """
    rows = len(codes)
    weights = np.ones(rows) if weights is None else weights
    one_hot = sparse.csr_array((weights, (codes, np.arange(rows))), shape=(out.shape[0], rows))
    out += one_hot @ block


def gram_upper(rows: np.ndarray, *, out: np.ndarray | None = None, outer: bool = False):
    """Upper triangle of rows^T rows (or rows rows^T with ``outer``) by BLAS syrk: half the
    work of a general product. Added to ``out`` (F-ordered float64) in place when given."""
    a = np.asarray(rows, dtype=np.float64).T  # F-ordered view of C-ordered rows: no copy
    if out is None:
        return blas.dsyrk(1.0, a, trans=int(outer), lower=0)
    return blas.dsyrk(1.0, a, beta=1.0, c=out, trans=int(outer), lower=0, overwrite_c=1)


def symmetric(upper: np.ndarray) -> np.ndarray:
    """The full symmetric matrix from its upper triangle."""
    return np.triu(upper) + np.triu(upper, 1).T
