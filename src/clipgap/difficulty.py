"""Task difficulty of a backbone on a task, measured on zero-shot embeddings."""

from __future__ import annotations

from clipgap.backbones import Backbone
from clipgap.data import Task
from clipgap.embeddings import class_text_features, encode_images
from clipgap.metrics import task_difficulty


def measure_difficulty(
    backbone: Backbone,
    task: Task,
    *,
    batch_size: int = 256,
    cache: bool = True,
    progress: bool = True,
) -> dict:
    """Every measure of :func:`~clipgap.metrics.task_difficulty`: silhouettes (modality and
    class clusters), ACS, zero-shot accuracy, modality gap, IIMM, LogME, H-score, TransRate and
    GBC, on one pass of zero-shot image embeddings (cached) and the class text embeddings."""
    images = encode_images(backbone, task, batch_size=batch_size, cache=cache, progress=progress)
    texts = class_text_features(backbone, task.class_names, task.templates)
    return task_difficulty(images.numpy(), texts.cpu().numpy(), task.labels)
