"""Exact measures on embeddings: silhouette, task difficulty and transferability.

Pure numpy functions in the scikit-learn manner: data first, keyword-only options, inputs
validated with :class:`~clipgap.errors.MetricError`, the definition, range and meaning of each
result in its docstring. Definitions follow ``docs/science.md``.

- :mod:`~clipgap.metrics.silhouette`: :func:`silhouette_score` (cosine O(N K d), euclidean).
- :mod:`~clipgap.metrics.transfer`: :func:`logme`, :func:`h_score`, :func:`transrate`,
  :func:`gbc`.
- :mod:`~clipgap.metrics.difficulty`: :func:`iimm` and :func:`task_difficulty`, which reports
  all of them for a task.
- :mod:`~clipgap.metrics.moments` and :mod:`~clipgap.metrics.inputs`: the one blockwise pass
  over the images and the input checks they share.
"""

from clipgap.metrics.difficulty import iimm, task_difficulty
from clipgap.metrics.silhouette import silhouette_metrics, silhouette_score
from clipgap.metrics.transfer import GBC_KINDS, gbc, h_score, logme, transrate

__all__ = [
    "GBC_KINDS",
    "gbc",
    "h_score",
    "iimm",
    "logme",
    "silhouette_metrics",
    "silhouette_score",
    "task_difficulty",
    "transrate",
]
