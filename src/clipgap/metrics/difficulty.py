"""Task difficulty for a zero-shot CLIP: silhouettes, ACS, accuracy, gap, IIMM and the
transferability measures, on L2-normalised image and class-text embeddings (science.md)."""

from __future__ import annotations

import numpy as np

from clipgap.errors import MetricError
from clipgap.metrics.inputs import (
    block_rows,
    check_matrix,
    chunks,
    class_labels,
    normalised_rows,
)
from clipgap.metrics.moments import ClassMoments, class_moments
from clipgap.metrics.probes import knn_accuracy, probe_accuracy
from clipgap.metrics.silhouette import silhouette_score
from clipgap.metrics.transfer import gbc_from, h_score_from, logme_from, transrate_from

NAN = float("nan")


def iimm(images, texts, labels) -> float:
    """IIMM, the inter-intra modal measure (Niss et al., arXiv 2407.15731).

    Mean of (a) the mean over images of the mean cosine similarity to the C - 1 incorrect class
    texts and (b) the mean cosine similarity of the N (N - 1) / 2 image pairs i < j. With unit
    vectors, (b) = (|sum_i x_i|^2 - N) / (N (N - 1)) and (a) needs only the per-class image sums:
    O(N d), no N x N or N x C matrix. ``images`` (N, d) and ``texts`` (C, d), raw or normalised;
    ``labels`` (N,) integers in 0..C-1; needs N >= 2 and C >= 2.

    Returns a float in [-1, 1]. Higher = images crowd together and sit as close to the wrong
    class texts as to each other: a task CLIP separates poorly, which the follow-up found to
    predict larger in-domain gains (and more forgetting) from fine-tuning.
    """
    X = check_matrix(images, "images")
    T = normalised_rows(check_matrix(texts, "texts"), name="texts")
    if X.shape[1] != T.shape[1]:
        raise MetricError(f"images dim {X.shape[1]} != texts dim {T.shape[1]}")
    y = class_labels(labels, X.shape[0], T.shape[0])
    if X.shape[0] < 2 or T.shape[0] < 2:
        raise MetricError(f"iimm needs >= 2 images and >= 2 texts; got {X.shape[0]} and {len(T)}")
    return iimm_from(class_moments(X, y, T.shape[0]), T)


def iimm_from(m: ClassMoments, texts: np.ndarray) -> float:
    """:func:`iimm` from moments over all C classes (codes = labels) and unit class texts."""
    n, c = m.n, texts.shape[0]
    sums = m.raw_sums()
    total = sums.sum(axis=0)
    correct = float(np.einsum("kj,kj->", sums, texts))
    inter = (float(total @ texts.sum(axis=0)) - correct) / (n * (c - 1))
    intra = (float(total @ total) - n) / (n * (n - 1))
    return 0.5 * (inter + intra)


def _zero_shot_accuracy(images: np.ndarray, texts: np.ndarray, y: np.ndarray) -> float:
    """Top-1 of argmax_c cos(image_i, text_c), in row blocks of bounded memory."""
    correct = 0
    for start, stop in chunks(images.shape[0], block_rows(max(texts.shape))):
        block = np.asarray(images[start:stop], dtype=np.float64)
        scores = block @ texts.T  # argmax is unchanged by the positive 1/|x| factor
        correct += int((scores.argmax(axis=1) == y[start:stop]).sum())
    return correct / images.shape[0]


def _silhouettes(images, raw_texts, y) -> tuple[float, float]:
    n, c = images.shape[0], raw_texts.shape[0]
    # Silhouette normalises rows itself, so the stack keeps the inputs' precision (no copy to
    # float64 of the N image rows).
    stacked = np.concatenate([images, raw_texts], dtype=np.result_type(images, raw_texts, "f4"))
    modality = np.concatenate([np.zeros(n, dtype=np.intp), np.ones(c, dtype=np.intp)])
    ss_modality = silhouette_score(stacked, modality) if n + c >= 3 else NAN
    classes = np.concatenate([y, np.arange(c)])
    ss_class = silhouette_score(stacked, classes) if c >= 2 else NAN
    return float(ss_modality), float(ss_class)


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
    - ``iimm`` in [-1, 1] (:func:`iimm`; high = poorly separated). NaN when N < 2 or C < 2.
    - ``logme``, ``hscore``, ``transrate``, ``gbc`` (:func:`~clipgap.metrics.logme`,
      :func:`~clipgap.metrics.h_score`, :func:`~clipgap.metrics.transrate`,
      :func:`~clipgap.metrics.gbc` spherical; high = easier transfer) on the images and
      labels. NaN when the images hold fewer than 2 classes.
    - ``probe_accuracy`` in [0, 1]: 5-fold cross-validated accuracy of a ridge classifier on the
      images (:func:`~clipgap.metrics.probes.probe_accuracy`); ``knn_accuracy`` in [0, 1]:
      leave-one-out cosine 10-NN accuracy on up to 500 sampled query images
      (:func:`~clipgap.metrics.probes.knn_accuracy`). High = easier task. NaN with < 2 classes.
    - ``n_images`` (N) and ``n_classes`` (C).
    """
    images = check_matrix(image_embeddings, "image_embeddings")
    raw_texts = check_matrix(text_embeddings, "text_embeddings")
    texts = normalised_rows(raw_texts, name="text_embeddings")
    if images.shape[1] != texts.shape[1]:
        raise MetricError(
            f"image_embeddings dim {images.shape[1]} != text_embeddings dim {texts.shape[1]}"
        )
    n, c = images.shape[0], texts.shape[0]
    y = class_labels(labels, n, c)
    m = class_moments(images, y, c, name="image_embeddings", squares=True, gram=True)
    ss_modality, ss_class = _silhouettes(images, raw_texts, y)
    transferable = int((m.counts > 0).sum()) >= 2
    return {
        "silhouette_modality": ss_modality,
        "silhouette_class": ss_class,
        "acs": float(np.einsum("kj,kj->", m.raw_sums(), texts)) / n,
        "zero_shot_accuracy": _zero_shot_accuracy(images, texts, y),
        "modality_gap": float(np.linalg.norm(m.mean() - texts.mean(axis=0))),
        "iimm": iimm_from(m, texts) if n >= 2 and c >= 2 else NAN,
        "logme": logme_from(m) if transferable else NAN,
        "hscore": h_score_from(m) if transferable else NAN,
        "transrate": transrate_from(images, y, m, name="image_embeddings") if transferable else NAN,
        "gbc": gbc_from(m) if transferable else NAN,
        "probe_accuracy": probe_accuracy(images, y, c) if transferable else NAN,
        "knn_accuracy": knn_accuracy(images, y, c) if transferable else NAN,
        "n_images": int(n),
        "n_classes": int(c),
    }
