"""Top-1 accuracy of a :class:`~clipgap.tuned.TunedModel` on a task, and the zero-shot model.

Each task is scored with its own class names and prompt templates (a linear head only answers
for the class names it was trained on). When the model's image tower is frozen the raw image
embeddings come from :func:`clipgap.embeddings.encode_images` and its disk cache; otherwise the
images go through the encoder.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from clipgap.backbones import Backbone
from clipgap.data import Task
from clipgap.embeddings import TaskImages, encode_images
from clipgap.errors import DataError
from clipgap.tuned import TunedModel


class TensorBatches:
    """Mini-batches ``(x[idx], y[idx])`` of in-memory tensors; shuffled when given a generator."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        generator: torch.Generator | None = None,
    ) -> None:
        self.x, self.y, self.batch_size, self.generator = x, y, batch_size, generator

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __iter__(self):
        n = len(self.y)
        order = torch.randperm(n, generator=self.generator) if self.generator else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.x[idx], self.y[idx]


def image_loader(
    task: Task,
    transform,
    *,
    batch_size: int,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """Preprocessed images of ``task`` with labels; shuffled when given a generator."""
    return DataLoader(
        TaskImages(task, transform),
        batch_size=batch_size,
        shuffle=generator is not None,
        generator=generator,
        num_workers=num_workers,
    )


def load_pixels(
    task: Task, transform, *, batch_size: int = 256, num_workers: int = 0, progress: bool = False
) -> torch.Tensor:
    """Every image of ``task`` through ``transform``, stacked (N, 3, H, W)."""
    loader = image_loader(task, transform, batch_size=batch_size, num_workers=num_workers)
    chunks = [
        x for x, _ in tqdm(loader, desc=f"load {task.name}", disable=not progress, leave=False)
    ]
    return torch.cat(chunks)


@torch.no_grad()
def features_of(model: TunedModel, batches, *, embedded: bool, progress: bool = False):
    """Normalised image features (N, d) of every batch ``(x, y)``, in order.

    ``embedded``: ``x`` are raw image embeddings (frozen tower), else preprocessed images.
    """
    was_training = model.training
    model.eval()
    out = []
    for x, _ in tqdm(batches, desc="features", unit="batch", disable=not progress, leave=False):
        x = x.to(model.device)
        out.append(model.project_image(x) if embedded else model.image_features(x))
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def accuracy_from_features(
    model: TunedModel,
    feats: torch.Tensor,
    labels,
    class_names: list[str],
    templates: list[str],
) -> float:
    """Top-1 accuracy in [0, 1] of normalised image features ``feats`` against ``labels``."""
    logits = model.logits(feats, class_names, templates)
    pred = logits.argmax(dim=-1).cpu().numpy()
    return float(np.mean(pred == np.asarray(labels)))


class SplitData:
    """A task split ready for repeated passes (training epochs, validations).

    ``embedded``: ``x`` holds raw image embeddings from :func:`encode_images` (frozen image
    tower); otherwise preprocessed pixels when they fit in ``pixel_cache_mb`` (the transform
    is deterministic), else ``x`` is None and images stream from the task.
    """

    def __init__(
        self,
        model: TunedModel,
        task: Task,
        *,
        embedded: bool,
        pixel_cache_mb: float = 1024.0,
        batch_size: int = 256,
        num_workers: int = 0,
        progress: bool = False,
    ) -> None:
        self.task, self.embedded, self.num_workers = task, embedded, num_workers
        self.batch_size = batch_size
        self.labels = torch.as_tensor(np.array(task.labels))
        self.x: torch.Tensor | None = None
        kw = {"batch_size": batch_size, "num_workers": num_workers, "progress": progress}
        if embedded:
            self.x = encode_images(model.backbone, task, **kw)
        elif _pixel_mb(model, task) <= pixel_cache_mb:
            self.x = load_pixels(task, model.backbone.transform, **kw)

    def batches(self, model: TunedModel, batch_size: int, generator=None):
        """Mini-batches ``(x, y)``; shuffled when given a generator."""
        if self.x is not None:
            return TensorBatches(self.x, self.labels, batch_size, generator)
        return image_loader(
            self.task,
            model.backbone.transform,
            batch_size=batch_size,
            num_workers=self.num_workers,
            generator=generator,
        )

    def accuracy(self, model: TunedModel) -> float:
        """Top-1 accuracy in [0, 1] of ``model`` on this split (the task's own prompts)."""
        feats = features_of(model, self.batches(model, self.batch_size), embedded=self.embedded)
        t = self.task
        return accuracy_from_features(model, feats, t.labels, t.class_names, t.templates)


def _pixel_mb(model: TunedModel, task: Task) -> float:
    sample = model.backbone.transform(task.images.load(0))
    return len(task) * sample.numel() * sample.element_size() / 2**20


def accuracy(
    model: TunedModel,
    task: Task,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool = True,
    cache: bool = True,
) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` on ``task`` with the task's own prompts.

    Frozen image tower: raw embeddings from :func:`encode_images` (disk cache when ``cache``);
    otherwise every image goes through the (fine-tuned) encoder.
    """
    if len(task) == 0:
        raise DataError(f"task {task.name} ({task.split}) has no images to evaluate")
    if model.image_tower_frozen:
        raw = encode_images(
            model.backbone,
            task,
            batch_size=batch_size,
            num_workers=num_workers,
            cache=cache,
            progress=progress,
        )
        batches = TensorBatches(raw, torch.as_tensor(np.array(task.labels)), batch_size)
        feats = features_of(model, batches, embedded=True)
    else:
        loader = image_loader(
            task, model.backbone.transform, batch_size=batch_size, num_workers=num_workers
        )
        feats = features_of(model, loader, embedded=False, progress=progress)
    return accuracy_from_features(model, feats, task.labels, task.class_names, task.templates)


def zero_shot_model(backbone: Backbone) -> TunedModel:
    """The untouched backbone as a :class:`TunedModel` for evaluation.

    Freezes ``backbone`` (``requires_grad=False``) so evaluations read the embedding cache; a
    fine-tuning method sets its own flags when applied, so this does not affect training.
    """
    backbone.requires_grad_(False)
    model = TunedModel(backbone)
    model.eval()
    return model
