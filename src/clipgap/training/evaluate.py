"""Top-1 accuracy of an :class:`~clipgap.model.AdaptedModel` on a task, and the zero-shot model.

Each task is scored with its own class names and prompt templates; a linear head answers only
for the class names it was trained on, or a subset of them (its rows for those classes). When
the model's image tower is frozen the raw image embeddings come from
:func:`clipgap.embeddings.encode_images` and its disk cache; otherwise the images go through
the encoder.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from clipgap.backbones import Backbone
from clipgap.data import Task
from clipgap.devices import loader_options
from clipgap.embeddings import encode_images
from clipgap.errors import DataError
from clipgap.model import AdaptedModel
from clipgap.training.data import SplitData, TensorBatches, image_loader


@torch.no_grad()
def features_of(model: AdaptedModel, batches, *, embedded: bool, progress: bool = False):
    """Normalised image features (N, d) of every batch ``(x, y)``, in order.

    ``embedded``: ``x`` are raw image embeddings (frozen tower), else preprocessed images.
    """
    was_training = model.training
    model.eval()
    out = []
    for x, _ in tqdm(batches, desc="features", unit="batch", disable=not progress, leave=False):
        x = x.to(model.device, non_blocking=True)
        out.append(model.project_image(x) if embedded else model.image_features(x))
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def accuracy_from_features(
    model: AdaptedModel,
    feats: torch.Tensor,
    labels,
    class_names: list[str],
    templates: list[str],
) -> float:
    """Top-1 accuracy in [0, 1] of normalised image features ``feats`` against ``labels``."""
    logits = model.logits(feats, class_names, templates)
    pred = logits.argmax(dim=-1).cpu().numpy()
    return float(np.mean(pred == np.asarray(labels)))


def split_accuracy(model: AdaptedModel, split: SplitData) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` on a prepared split (the task's own prompts)."""
    feats = features_of(model, split.batches(model, split.batch_size), embedded=split.embedded)
    t = split.task
    return accuracy_from_features(model, feats, t.labels, t.class_names, t.templates)


def accuracy(
    model: AdaptedModel,
    task: Task,
    *,
    batch_size: int = 256,
    num_workers: int | str | None = None,
    pin_memory: bool | str | None = None,
    progress: bool = True,
    cache: bool = True,
) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` on ``task`` with the task's own prompts.

    Frozen image tower: raw embeddings from :func:`encode_images` (disk cache when ``cache``);
    otherwise every image goes through the (fine-tuned) encoder. ``num_workers`` /
    ``pin_memory``: None / ``auto`` = loader workers and pinned memory on CUDA only.
    """
    if len(task) == 0:
        raise DataError(f"task {task.name} ({task.split}) has no images to evaluate")
    loading = loader_options(num_workers, pin_memory, model.device)
    if model.image_tower_frozen:
        raw = encode_images(
            model.backbone, task, batch_size=batch_size, cache=cache, progress=progress, **loading
        )
        batches = TensorBatches(raw, torch.as_tensor(np.array(task.labels)), batch_size)
        feats = features_of(model, batches, embedded=True)
    else:
        loader = image_loader(task, model.backbone.transform, batch_size=batch_size, **loading)
        feats = features_of(model, loader, embedded=False, progress=progress)
    return accuracy_from_features(model, feats, task.labels, task.class_names, task.templates)


def zero_shot_model(backbone: Backbone) -> AdaptedModel:
    """The untouched backbone as an :class:`AdaptedModel` for evaluation.

    Freezes ``backbone`` (``requires_grad=False``) so evaluations read the embedding cache; a
    fine-tuning method sets its own flags when applied, so this does not affect training.
    """
    backbone.requires_grad_(False)
    model = AdaptedModel(backbone)
    model.eval()
    return model
