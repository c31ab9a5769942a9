"""What the training loop reads: the validation split, few-shot sampling, and mini-batches.

How a train split is used (:func:`clipgap.training.finetune`):

1. :func:`split_validation` holds out validation from the **full** train split: ``val_fraction``
   (10 %) of its images, at most ``val_max`` (5,000), drawn with ``val_seed`` (0).
2. With ``shots=k``, :func:`sample_shots` keeps k images per class of what is left, drawn with
   the run's ``seed``. Validation is drawn before sampling and does not depend on k, so with few
   shots it may be larger than the training set (e.g. 1,000 training images with k=4 and 10
   classes: 100 validation images, 40 training images). Validation never overlaps training;
   test images come from a separate split and are never seen.

:class:`SplitData` holds a split ready for repeated passes: cached image embeddings when the
image tower is frozen, else the split's memory-mapped entry of the pixel cache
(:mod:`clipgap.pixels`), else preprocessed pixels when they fit in memory, otherwise a
streaming loader.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler
from tqdm.auto import tqdm

from clipgap.data import Task
from clipgap.devices import loader_options
from clipgap.embeddings import encode_images
from clipgap.errors import ConfigError, DataError
from clipgap.model import AdaptedModel
from clipgap.pixels import CachedPixels, TaskImages, cached_pixels, task_images
from clipgap.training.config import Holdout, TrainConfig
from clipgap.training.distributed import IGNORE, Dist, Padded, ShardedBatches


def split_validation(
    task: Task, fraction: float, *, max_images: int = 5000, seed: int = 0
) -> tuple[Task, Task | None]:
    """(fit, validation) subsets of a train split: ``round(fraction * N)`` images (at least one,
    at most ``max_images``) drawn with ``seed``; ``fraction == 0`` -> (task, None)."""
    n = len(task)
    n_val = Holdout(fraction, max_images, seed).size(n)
    if n_val == 0:
        return task, None
    if n - n_val < 1:
        raise DataError(
            f"task {task.name} ({task.split}) has {n} images: too few to hold out "
            f"{n_val} for validation (set train.val_fraction=0 to skip validation)"
        )
    order = np.random.default_rng(seed).permutation(n)
    val_idx, fit_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return task.subset(fit_idx, split=f"{task.split}-fit"), task.subset(val_idx, split="val")


def _check_shots_value(shots) -> None:
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise ConfigError(f"train.shots must be an integer >= 1 (or all), got {shots!r}")


def _too_few(task: Task, shots: int) -> str | None:
    """The one-line complaint when a class of ``task`` has fewer than ``shots`` images."""
    counts = np.bincount(task.labels, minlength=task.n_classes)
    smallest = int(np.argmin(counts))
    if counts[smallest] >= shots:
        return None
    return (
        f"train.shots={shots} is more than class {task.class_names[smallest]!r} of task "
        f"{task.name} ({task.split}) has: {int(counts[smallest])} images"
    )


def sample_shots(task: Task, shots: int, *, seed: int) -> Task:
    """The subset of ``task`` with ``shots`` images of every class, drawn with ``seed``.

    One permutation of the task's images (``numpy.random.default_rng(seed)``) is walked in order
    and an image kept while its class has fewer than ``shots``; the kept images stay in their
    original order. Deterministic for a given task, ``shots`` and ``seed``, and nested: with the
    same seed, the k-shot subset contains every smaller-k subset. Apply it to the training
    portion (after :func:`split_validation`). Raises ConfigError when ``shots`` < 1 or a class
    has fewer than ``shots`` images (naming the class and its count).
    """
    _check_shots_value(shots)
    problem = _too_few(task, shots)
    if problem is not None:
        raise ConfigError(problem)
    order = np.random.default_rng(seed).permutation(len(task))
    by_class = order[np.argsort(task.labels[order], kind="stable")]  # each class in `order`
    counts = np.bincount(task.labels, minlength=task.n_classes)
    rank = np.arange(len(task)) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = np.sort(by_class[rank < shots])
    return task.subset(keep, split=f"{task.split}-{shots}shot")


def check_shots(
    task: Task,
    shots: int | None,
    *,
    val_fraction: float = 0.1,
    val_max: int = 5000,
    val_seed: int = 0,
) -> None:
    """Raise ConfigError unless ``shots`` training images per class can be drawn from ``task``.

    ``task`` is the full train split; the check applies the same validation hold-out as
    training (``val_fraction``, ``val_max``, ``val_seed``: :class:`TrainConfig`'s fields and
    defaults) and looks at what is left. ``shots=None`` (all images) always passes. Nothing is
    trained or encoded, so a study can call it for every run before any runs.
    """
    if shots is None:
        return
    _check_shots_value(shots)
    fit, _ = split_validation(task, val_fraction, max_images=val_max, seed=val_seed)
    problem = _too_few(fit, shots)
    if problem is not None:
        raise ConfigError(f"{problem} after validation is held out")


def training_splits(train_task: Task, cfg: TrainConfig) -> tuple[Task, Task | None]:
    """(training, validation) portions of ``train_task`` under ``cfg``: validation held out of
    the full split first, then ``cfg.shots`` images per class of the rest (seed ``cfg.seed``)."""
    fit_task, val_task = split_validation(
        train_task, cfg.val_fraction, max_images=cfg.val_max, seed=cfg.val_seed
    )
    if cfg.shots is not None:
        fit_task = sample_shots(fit_task, cfg.shots, seed=cfg.seed)
    return fit_task, val_task


class TensorBatches:
    """Mini-batches ``(x[idx], y[idx])`` of in-memory tensors; shuffled when given a generator.

    With ``dist`` (several processes), each batch is this rank's slice of the global batch
    (:meth:`~clipgap.training.distributed.Dist.shard`; a padding sample has label -100).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        generator: torch.Generator | None = None,
        dist: Dist | None = None,
    ) -> None:
        self.x, self.y, self.batch_size, self.generator = x, y, batch_size, generator
        self.dist = dist

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __iter__(self):
        n = len(self.y)
        order = torch.randperm(n, generator=self.generator) if self.generator else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.dist is not None and self.dist.active:
                idx, pad = self.dist.shard(idx)
                if pad:
                    yield self.x[idx], torch.full_like(self.y[idx], IGNORE)
                    continue
            yield self.x[idx], self.y[idx]


def image_loader(
    task: Task,
    transform,
    *,
    batch_size: int,
    num_workers: int = 0,
    pin_memory: bool = False,
    generator: torch.Generator | None = None,
    dist: Dist | None = None,
    cache: bool = True,
) -> DataLoader:
    """Preprocessed images of ``task`` with labels; shuffled when given a generator.

    With ``dist`` (several processes) every rank draws the same global batches (the same
    sampler and generator as one process) and loads only its slice of each. ``cache``: read
    them from the pixel cache when it serves them (:func:`clipgap.pixels.task_images`).
    """
    if cache:
        dataset = task_images(task, transform, num_workers=num_workers)
    else:
        dataset = TaskImages(task, transform)
    kw = {"generator": generator, "num_workers": num_workers, "pin_memory": pin_memory}
    if dist is None or not dist.active:
        return DataLoader(dataset, batch_size=batch_size, shuffle=generator is not None, **kw)
    if generator is None:
        order = SequentialSampler(dataset)
    else:
        order = RandomSampler(dataset, generator=generator)
    batches = ShardedBatches(BatchSampler(order, batch_size, drop_last=False), dist)
    return DataLoader(Padded(dataset), batch_sampler=batches, **kw)


def load_pixels(
    task: Task,
    transform,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    pin_memory: bool = False,
    progress: bool = False,
) -> torch.Tensor:
    """Every image of ``task`` through ``transform``, stacked (N, 3, H, W)."""
    loader = image_loader(
        task,
        transform,
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=pin_memory,
        cache=False,  # the caller found no entry
    )
    chunks = [
        x for x, _ in tqdm(loader, desc=f"load {task.name}", disable=not progress, leave=False)
    ]
    return torch.cat(chunks)


class SplitData:
    """A task split ready for repeated passes (training epochs, validations).

    ``embedded``: ``x`` holds raw image embeddings from :func:`encode_images` (frozen image
    tower). Otherwise, when the split's preprocessed pixels fit in ``pixel_cache_mb``, ``x``
    is its entry of the pixel cache (:mod:`clipgap.pixels`, memory-mapped: nothing held in
    memory) when the cache serves it, else the pixels loaded into memory (the transform is
    deterministic); beyond ``pixel_cache_mb`` ``x`` is None and images stream through a
    loader, from the pixel cache when it serves them. Pixels or
    embeddings held in memory live on the model's device when that is CUDA (batches are then
    gathered on the GPU), unless ``on_host`` keeps them in host memory (batches are copied
    over one by one). ``num_workers`` / ``pin_memory``: an int / bool, or ``auto`` (see
    :func:`clipgap.devices.loader_options`).
    """

    def __init__(
        self,
        model: AdaptedModel,
        task: Task,
        *,
        embedded: bool,
        pixel_cache_mb: float = 1024.0,
        batch_size: int = 256,
        num_workers: int | str = 0,
        pin_memory: bool | str = False,
        progress: bool = False,
        on_host: bool = False,
    ) -> None:
        self.task, self.embedded = task, embedded
        self.loader = loader_options(num_workers, pin_memory, model.device)
        self.batch_size = batch_size
        self.labels = torch.as_tensor(np.array(task.labels))
        self.x: torch.Tensor | CachedPixels | None = None
        self.streams_cache = False  # x is None: the loader reads the pixel cache
        kw = {"batch_size": batch_size, **self.loader, "progress": progress}
        if embedded:
            self.x = encode_images(model.backbone, task, **kw)
        else:  # the same batches with or without the pixel cache (records do not change)
            workers = self.loader["num_workers"]
            cached = cached_pixels(task, model.backbone.transform, num_workers=workers)
            if _pixel_mb(model, task) > pixel_cache_mb:
                self.streams_cache = cached is not None
            elif cached is not None:
                self.x = cached
            else:
                self.x = load_pixels(task, model.backbone.transform, **kw)
        if self.x is None or model.device.type != "cuda" or on_host:
            return
        if isinstance(self.x, CachedPixels):  # uint8 on the GPU: a quarter of float pixels
            self.x = self.x.on(model.device)
        else:
            self.x = self.x.to(model.device)
        self.labels = self.labels.to(model.device)

    @property
    def resident_mb(self) -> float:
        """MiB this split holds in host memory (a memory-mapped pixel cache entry: none)."""
        if not isinstance(self.x, torch.Tensor) or self.x.device.type != "cpu":
            return 0.0
        return self.x.numel() * self.x.element_size() / 2**20

    def batches(self, model: AdaptedModel, batch_size: int, generator=None, dist=None):
        """Mini-batches ``(x, y)``; shuffled when given a generator; with ``dist`` (several
        processes) this rank's slice of each global batch."""
        if self.x is not None:
            return TensorBatches(self.x, self.labels, batch_size, generator, dist)
        return image_loader(
            self.task,
            model.backbone.transform,
            batch_size=batch_size,
            generator=generator,
            dist=dist,
            cache=self.streams_cache,
            **self.loader,
        )


def _pixel_mb(model: AdaptedModel, task: Task) -> float:
    sample = model.backbone.transform(task.images.load(0))
    return len(task) * sample.numel() * sample.element_size() / 2**20
