"""Transferability measures on L2-normalised image embeddings: LogME, H-score, TransRate, GBC.

Definitions follow ``docs/science.md`` ("Transferability measures"). Each public function checks
its inputs, reads the images once through :func:`~clipgap.metrics.moments.class_moments`
(TransRate reads them once more, class by class) and is exact on the full data in O(N d^2)
time: no N x N matrix, only (d, d), (K, d) and, per class, min(n_k, d)-square matrices.
The ``*_from`` functions compute the same from precomputed moments (``task_difficulty``
shares one pass between them).
"""

from __future__ import annotations

import logging
import numbers

import numpy as np
from scipy.linalg import lapack

from clipgap.errors import MetricError
from clipgap.metrics.inputs import check_classes, check_matrix, encode_labels, normalised_rows
from clipgap.metrics.moments import ClassMoments, class_moments, gram_upper, symmetric

log = logging.getLogger(__name__)

GBC_KINDS = ("spherical", "diagonal")
GBC_VARIANCE_FLOOR = 1e-4  # as in Pandy et al.'s code: no class dimension has zero variance
LOGME_GUARD = 1e-5  # the LogME paper's guard in the fixed-point denominators
LOGME_TOL = 1e-10  # stop when alpha / beta changes by at most this relative amount
LOGME_MAX_ITER = 1000


def _prepare(images, labels, what: str, **moments) -> tuple[np.ndarray, np.ndarray, ClassMoments]:
    X = check_matrix(images, "images")
    codes, counts = encode_labels(labels, X.shape[0], "images")
    check_classes(counts, what)
    return X, codes, class_moments(X, codes, len(counts), **moments)


def _rank_cutoff(eigenvalues: np.ndarray, n: int) -> float:
    """Eigenvalues at or below this are rounding noise (numpy's matrix_rank rule)."""
    return float(eigenvalues.max()) * max(n, eigenvalues.shape[0]) * np.finfo(np.float64).eps


def h_score(images, labels) -> float:
    """H-score (Bao et al., 2019): tr(pinv(Cov(X)) Cov(g)), g_i = mean of X over i's class.

    ``images`` (N, d), raw or normalised (rows are L2-normalised first); ``labels`` (N,) any
    comparable values, at least 2 classes. Covariances are ddof 0 (the ratio does not depend on
    it); pinv drops eigenvalues of Cov(X) at or below max(N, d) * eps * the largest.

    Returns a float in [0, min(C - 1, d)]: the share of the feature variance that lies between
    class means, summed over directions. Higher = classes more separable = easier transfer.
    """
    return h_score_from(_prepare(images, labels, "h_score", gram=True)[2])


def h_score_from(m: ClassMoments) -> float:
    """:func:`h_score` from moments with ``gram`` (classes without rows are ignored)."""
    m = m.present()
    lam, vectors = np.linalg.eigh(m.scatter())
    if lam.max() <= 0:
        return 0.0  # all rows equal: Cov(X) = 0, so pinv(Cov(X)) = 0
    keep = lam > _rank_cutoff(lam, m.n)
    whitened = (m.centred_means() @ vectors[:, keep]) / np.sqrt(lam[keep])
    # Cov(X) = S / N and Cov(g) = sum_k n_k d_k d_k^T / N: the N cancels in the trace.
    return float(m.counts @ np.einsum("kj,kj->k", whitened, whitened))


def transrate(images, labels, *, eps: float = 1e-4) -> float:
    """TransRate (Huang et al., ICML 2022): R(Z) - (1/C) sum_c R(Z_c).

    Z = X - mean(X) (X the L2-normalised rows), Z_c its rows of class c, and the coding rate
    R(A) = 1/2 logdet(I + A^T A / (n_A eps)) with n_A the rows of A. Each logdet is a
    Cholesky factorisation (of A A^T when that is smaller and cheaper: equal determinants);
    Z^T Z is the sum of the Z_c^T Z_c. ``labels``: any comparable values, at least 2 classes;
    C counts the classes that have rows.

    Returns a float below d/2 log(1 + 1/(d eps)) (tr Cov(X) <= 1 for unit rows), >= 0 when
    the classes have equal sizes (logdet is concave): the coding length the labels explain.
    Higher = classes more separable = easier transfer.
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 < eps < np.inf:
        raise MetricError(f"transrate eps must be a positive number; got {eps!r}")
    X, codes, m = _prepare(images, labels, "transrate")
    return transrate_from(X, codes, m, eps=eps)


def transrate_from(X, codes: np.ndarray, m: ClassMoments, *, eps: float = 1e-4, name="images"):
    """:func:`transrate` from checked X, its class codes (0..K-1) and their moments.

    Reads X once more, class by class. Without ``m.gram`` the whole-data scatter is the sum of
    the classes' (d, d) scatters about the overall mean, and each class's logdet uses its (d, d)
    matrix; with it, a class of n_c < d rows factors its cheaper (n_c, n_c) matrix instead.
    """
    mean, d = m.mean(), m.dim
    whole = None if m.gram is None else m.scatter()
    total = np.zeros((d, d), order="F") if whole is None else None
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(m.counts)])
    rates = []
    for k in np.flatnonzero(m.counts):
        Z = normalised_rows(X[order[bounds[k] : bounds[k + 1]]], name=name)
        Z -= mean
        # logdet(I + Z^T Z / c) = logdet(I + Z Z^T / c): the (n_c, n_c) one when it is smaller.
        if whole is not None and Z.shape[0] < d:
            upper = gram_upper(Z, outer=True)
        else:
            upper = gram_upper(Z)
            if total is not None:
                total += upper
        rates.append(_coding_rate(upper, Z.shape[0], eps))
    if whole is None:
        whole = symmetric(total)
    return float(_coding_rate(whole, m.n, eps) - np.mean(rates))


def _coding_rate(gram: np.ndarray, n: int, eps: float) -> float:
    """1/2 logdet(I + gram / (n eps)) by Cholesky (LAPACK potrf on the upper triangle, so
    ``gram`` may hold only that; it is overwritten)."""
    gram /= n * eps
    gram[np.diag_indices_from(gram)] += 1.0
    # A symmetric matrix equals its transpose: hand LAPACK the Fortran-ordered one, no copy.
    factor, info = lapack.dpotrf(gram if gram.flags.f_contiguous else gram.T, overwrite_a=1)
    if info != 0:
        raise MetricError(f"transrate: I + Z^T Z / (n eps) is not positive definite ({info})")
    return float(np.log(np.diagonal(factor)).sum())


def gbc(images, labels, *, kind: str = "spherical") -> float:
    """GBC (Pandy et al., CVPR 2022): -sum over ordered class pairs c != c' of exp(-D_B(c, c')).

    Each class is a Gaussian with its mean and per-dimension variance (ddof 0, floored at
    1e-4); ``kind="spherical"`` replaces the variances by their mean (one scalar per class),
    ``"diagonal"`` keeps them. D_B is the Bhattacharyya distance of the two Gaussians,
    1/8 (mu - mu')^T S^-1 (mu - mu') + 1/2 ln(det S / sqrt(det S_c det S_c')), S the mean
    of the two covariances. For ``spherical`` the log term is taken as the authors' code takes
    it (mit-ll/IIMM ``transferability_metrics.py``, after google-research's ``gbc.py``): of the
    scalar variances, ln(s / sqrt(s_c s_c')), without the factor d that the determinants of
    d-dimensional spherical Gaussians would give; the quadratic term is the d-dimensional one.

    Returns a float in [-C (C - 1), 0]: each term is the Bhattacharyya coefficient (overlap)
    of two classes. Higher (towards 0) = classes overlap less = easier transfer.
    """
    if kind not in GBC_KINDS:
        raise MetricError(f"gbc kind must be one of {', '.join(GBC_KINDS)}; got {kind!r}")
    return gbc_from(_prepare(images, labels, "gbc", squares=True)[2], kind=kind)


def gbc_from(m: ClassMoments, *, kind: str = "spherical") -> float:
    """:func:`gbc` from moments with ``squares`` (classes without rows are ignored)."""
    m = m.present()
    means = m.sums / m.counts[:, None]  # about the shift: differences are unchanged
    var = np.maximum(m.class_variances(), GBC_VARIANCE_FLOOR)
    if kind == "spherical":
        var = var.mean(axis=1, keepdims=True)
    log_det = np.log(var).sum(axis=1)  # spherical: the scalar's log, as the authors' code
    overlap = 0.0
    for c in range(len(means) - 1):
        mid = (var[c] + var[c + 1 :]) / 2.0
        diff2 = (means[c + 1 :] - means[c]) ** 2
        quad = (
            diff2.sum(axis=1) / mid[:, 0] if kind == "spherical" else (diff2 / mid).sum(axis=1)
        ) / 8.0
        log_term = np.log(mid).sum(axis=1) - 0.5 * (log_det[c] + log_det[c + 1 :])
        overlap += float(np.exp(-(quad + 0.5 * log_term)).sum())
    return -2.0 * overlap  # each unordered pair counts twice


def logme(images, labels) -> float:
    """LogME (You et al., ICML 2021): mean over classes k of log p(y_k | X, alpha*, beta*) / N.

    y_k is the one-hot column of class k; the model is Bayesian linear regression y_k = X w +
    noise, w ~ N(0, I / alpha), noise ~ N(0, I / beta). alpha*, beta* maximise the evidence by
    the paper's fixed-point iteration (alpha = gamma / |m|^2, beta = (N - gamma) / |y - X m|^2,
    with the paper's 1e-5 guard in the denominators) on the eigendecomposition of X^T X (the
    SVD of X), iterated until alpha / beta changes by at most 1e-10 relatively. The evidence is
    evaluated exactly at the result (log det over all d directions, so N < d is exact too).
    ``labels``: any comparable values, at least 2 classes.

    Returns a float: a log density per image, unbounded in principle (about -1 to 2 for
    one-hot targets on unit features). Higher = the labels are better explained by a linear
    model on the features = easier transfer.
    """
    return logme_from(_prepare(images, labels, "logme", gram=True)[2])


def logme_from(m: ClassMoments) -> float:
    """:func:`logme` from moments with ``gram`` (classes without rows are ignored)."""
    m = m.present()
    mean = m.mean()
    sigma, vectors = np.linalg.eigh(m.scatter() + m.n * np.outer(mean, mean))  # X^T X
    keep = sigma > _rank_cutoff(sigma, m.n)
    sigma, vectors = sigma[keep], vectors[:, keep]
    # x = U^T y_k with X = U diag(sqrt(sigma)) V^T: U^T y_k = V^T X^T y_k / sqrt(sigma).
    x2 = (m.raw_sums() @ vectors) ** 2 / sigma
    rest = np.maximum(m.counts - x2.sum(axis=1), 0.0)  # |y_k|^2 outside the span of X
    alpha, beta = _evidence_fixed_point(sigma, x2, rest, m.n)
    gamma, m2, res2 = _posterior_terms(sigma, x2, rest, alpha / beta)
    evidence = (
        0.5 * len(sigma) * np.log(alpha)
        + 0.5 * m.n * np.log(beta)
        - 0.5 * np.log(alpha[:, None] + beta[:, None] * sigma).sum(axis=1)
        - 0.5 * beta * res2
        - 0.5 * alpha * m2
        - 0.5 * m.n * np.log(2.0 * np.pi)
    )
    return float(np.mean(evidence) / m.n)


def _posterior_terms(sigma, x2, rest, t):
    """gamma, |m|^2 and |y - X m|^2 per class for the ratio t = alpha / beta."""
    denom = sigma + t[:, None]
    gamma = (sigma / denom).sum(axis=1)
    m2 = (x2 * sigma / denom**2).sum(axis=1)
    res2 = (x2 * (t[:, None] / denom) ** 2).sum(axis=1) + rest
    return gamma, m2, res2


def _evidence_fixed_point(sigma, x2, rest, n: int) -> tuple[np.ndarray, np.ndarray]:
    """alpha, beta per class from alpha = beta = 1 (all classes iterate together)."""
    alpha = np.ones(len(x2))
    beta = np.ones(len(x2))
    for _ in range(LOGME_MAX_ITER):
        t = alpha / beta
        gamma, m2, res2 = _posterior_terms(sigma, x2, rest, t)
        alpha = gamma / (m2 + LOGME_GUARD)
        beta = (n - gamma) / (res2 + LOGME_GUARD)
        if np.all(np.abs(alpha / beta - t) <= LOGME_TOL * t):
            break
    else:
        log.warning("LogME fixed point did not converge in %d iterations", LOGME_MAX_ITER)
    return alpha, beta
