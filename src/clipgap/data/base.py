"""The task: images, integer labels, class names, prompt templates and an optional domain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from PIL import Image

from clipgap.config import digest
from clipgap.errors import DataError


class ImageSource(Protocol):
    """Random access to a task's images as RGB PIL images."""

    def __len__(self) -> int: ...

    def load(self, index: int) -> Image.Image: ...


@dataclass
class ImageFiles:
    """Images stored as files; an unreadable file raises :class:`DataError` naming it."""

    paths: Sequence[str]

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> Image.Image:
        path = self.paths[index]
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except Exception as exc:  # PIL raises many types for bad files
            raise DataError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None


@dataclass
class ImageArrays:
    """Images held in memory as a uint8 array of shape (N, H, W, 3)."""

    pixels: np.ndarray

    def __len__(self) -> int:
        return len(self.pixels)

    def load(self, index: int) -> Image.Image:
        return Image.fromarray(self.pixels[index], mode="RGB")


@dataclass
class Task:
    """A classification task as CLIP sees it.

    ``fingerprint`` identifies the exact images and labels (it keys the embedding cache).
    """

    name: str
    split: str
    images: ImageSource
    labels: np.ndarray
    class_names: list[str]
    templates: list[str]
    fingerprint: str
    domain: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.labels) != len(self.images):
            raise DataError(
                f"task {self.name}: {len(self.images)} images but {len(self.labels)} labels"
            )
        if len(self.labels) == 0:
            raise DataError(f"task {self.name} ({self.split}): no images")
        if len(self.class_names) < 1:
            raise DataError(f"task {self.name}: no class names")
        bad = (self.labels < 0) | (self.labels >= len(self.class_names))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"task {self.name}: label {int(self.labels[i])} of image {i} is outside "
                f"0..{len(self.class_names) - 1} ({len(self.class_names)} classes)"
            )
        if not self.templates:
            raise DataError(f"task {self.name}: no prompt templates")
        for t in self.templates:
            if "{c}" not in t:
                raise DataError(f"task {self.name}: template {t!r} has no '{{c}}' placeholder")

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray, *, split: str) -> Task:
        """A task over a subset of this task's images (e.g. a validation split)."""
        indices = np.asarray(indices, dtype=np.int64)
        return Task(
            name=self.name,
            split=split,
            images=_Subset(self.images, indices),
            labels=self.labels[indices],
            class_names=self.class_names,
            templates=self.templates,
            fingerprint=digest(self.fingerprint, split, indices.tobytes().hex()),
            domain=self.domain,
            meta=dict(self.meta),
        )


@dataclass
class _Subset:
    base: ImageSource
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, index: int) -> Image.Image:
        return self.base.load(int(self.indices[index]))
