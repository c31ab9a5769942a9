"""Decode once: a task's images through a model's transform, kept on disk as uint8 pixels.

Preprocessing is deterministic (resize, centre crop; no augmentation), so the pixels a model
sees are the same in every run. :func:`cached_pixels` keeps them once per dataset x split x
transform in ``CACHE/pixels/`` (see :func:`clipgap.paths.cache_dir`) as a uint8 ``.npy`` file
(N, 3, H, W), taken after the transform's resize and crop and before ``ToTensor`` /
``Normalize``. Every run, loader worker and Ray task memory-maps it and applies the same
``ToTensor`` and ``Normalize`` to each batch, so the model gets bit-identical inputs.
:func:`task_images` is the dataset every image loader reads: the cache when it can serve,
else the images decoded and transformed one by one (:class:`TaskImages`).

Settings (environment): ``CLIPGAP_PIXEL_CACHE=off`` turns it off; ``CLIPGAP_PIXEL_CACHE_SIZE``
caps the directory (default ``20G``; least recently used entries are evicted).
"""

from clipgap.pixels.cache import (
    CachedImages,
    CachedPixels,
    TaskImages,
    cached_pixels,
    files_state,
    task_images,
)
from clipgap.pixels.recipe import (
    DEFAULT_SIZE,
    ENABLED_ENV,
    SIZE_ENV,
    Recipe,
    enabled,
    parse_size,
    recipe,
    size_cap,
)

__all__ = [
    "DEFAULT_SIZE",
    "ENABLED_ENV",
    "SIZE_ENV",
    "CachedImages",
    "CachedPixels",
    "Recipe",
    "TaskImages",
    "cached_pixels",
    "enabled",
    "files_state",
    "parse_size",
    "recipe",
    "size_cap",
    "task_images",
]
