"""Pixel cache entries: ``CACHE/pixels/KEY.npy`` (uint8, N x 3 x H x W) and ``KEY.json``.

``KEY`` is the task's fingerprint and the transform (:class:`~clipgap.pixels.recipe.Recipe`);
the JSON records the number of images and a digest of every image file's path, size and
modification time: an entry whose files changed is rebuilt. An entry is written to a temporary
file and renamed into place, under a file lock, so concurrent runs build it once and readers
never see half of one; least recently used entries are evicted to stay under the size cap.
A directory that is not writable, or a disk that fills while an entry is written, logs one
warning line and the caller reads the images without the cache.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from torch.utils.data import DataLoader, Dataset

from clipgap.data import Task
from clipgap.data.base import ImageArrays, ImageFiles, _Subset, digest
from clipgap.paths import atomic_write_text, cache_dir
from clipgap.pixels.recipe import Recipe, enabled, recipe, size_cap

log = logging.getLogger(__name__)

_warned: set[str] = set()
_failed: set[Path] = set()  # entries this process could not write: not tried again
LAYOUT = "uint8-nchw"  # how entries are laid out (part of their key)


class TaskImages(Dataset):
    """A task's images through a backbone's transform, with their labels."""

    def __init__(self, task: Task, transform) -> None:
        self.task = task
        self.transform = transform

    def __len__(self) -> int:
        return len(self.task)

    def __getitem__(self, index: int):
        return self.transform(self.task.images.load(index)), int(self.task.labels[index])


class CachedPixels:
    """A cache entry, memory-mapped (re-opened, not copied, in loader worker processes).

    ``pixels[index]`` -> model inputs (n, 3, H, W) of the images at ``index``. :meth:`on`
    copies the uint8 pixels to a device (a GPU), where batches are then made.
    """

    def __init__(self, path: Path, how: Recipe) -> None:
        self.path, self.recipe = Path(path), how
        self.array = np.load(self.path, mmap_mode="r")
        self.tensor: torch.Tensor | None = None  # the pixels on a device, after on()

    def __getstate__(self) -> dict:
        return {"path": self.path, "how": self.recipe}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["how"])

    def __len__(self) -> int:
        return len(self.array)

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def on(self, device: torch.device) -> CachedPixels:
        """These pixels held on ``device`` (uint8: a quarter of float pixels)."""
        self.tensor = torch.from_numpy(np.array(self.array)).to(device)
        return self

    def __getitem__(self, index) -> torch.Tensor:
        if self.tensor is not None:
            index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
            return self.recipe.finish(self.tensor[index.to(self.tensor.device)])
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        return self.recipe.finish(torch.from_numpy(np.ascontiguousarray(self.array[index])))


class CachedImages(Dataset):
    """:class:`TaskImages` read from a cache entry; a loader fetches whole batches at once."""

    def __init__(self, task: Task, pixels: CachedPixels) -> None:
        self.labels, self.pixels = np.asarray(task.labels), pixels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.pixels[[index]][0], int(self.labels[index])

    def __getitems__(self, indices: list[int]):
        x = self.pixels[indices]
        return [(x[i], int(self.labels[j])) for i, j in enumerate(indices)]


def task_images(task: Task, transform, *, num_workers: int = 0) -> Dataset:
    """The dataset image loaders read: the task's images from the pixel cache when it can
    serve them (built now if needed), else decoded and transformed one by one."""
    pixels = cached_pixels(task, transform, num_workers=num_workers)
    return TaskImages(task, transform) if pixels is None else CachedImages(task, pixels)


def _base(source):
    while isinstance(source, _Subset):
        source = source.base
    return source


def _files(source) -> list[str] | None:
    """The image files behind ``source`` (through subsets), or None when it has none."""
    if isinstance(source, _Subset):
        paths = _files(source.base)
        return None if paths is None else [paths[int(i)] for i in source.indices]
    return [str(p) for p in source.paths] if isinstance(source, ImageFiles) else None


def files_state(task: Task) -> str | None:
    """A digest of the path, size and modification time of every image file of ``task``."""
    paths = _files(task.images)
    if paths is None:
        return None
    stats = []
    for p in paths:
        try:
            st = os.stat(p)
            stats.append((p, st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((p, -1, -1))
    return digest(stats)


def cached_pixels(task: Task, transform, *, num_workers: int = 0) -> CachedPixels | None:
    """The cache entry of ``task`` under ``transform``, built now when missing or stale; None
    when the cache is off, the transform is not cacheable, the images are already in memory,
    the entry would not fit under the size cap, or it cannot be written (one warning)."""
    if not enabled() or isinstance(_base(task.images), ImageArrays):
        return None
    how = recipe(transform)
    if how is None:
        return None
    cap = size_cap()
    try:
        root = cache_dir("pixels")
    except OSError as exc:
        return _unwritable(exc.filename or "the pixel cache directory", exc)
    path = root / f"{digest(task.fingerprint, how.key, LAYOUT)}.npy"
    state = files_state(task)
    entry = _open(path, task, how, state)
    if entry is not None or path in _failed:
        return entry
    try:
        with FileLock(str(path.with_suffix(".lock"))):
            entry = _open(path, task, how, state, quiet=True)  # built while we waited?
            if entry is None and _build(path, task, how, state, cap, num_workers):
                entry = _open(path, task, how, state, quiet=True)
    except OSError as exc:
        _failed.add(path)
        return _unwritable(root, exc)
    if entry is None:
        _failed.add(path)
    return entry


def _open(path: Path, task: Task, how: Recipe, state, *, quiet=False) -> CachedPixels | None:
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("files") != state or meta.get("n") != len(task):
        if not quiet:
            log.warning("pixel cache %s: the images of %s changed; rebuilding", path, task.name)
        return None
    try:
        entry = CachedPixels(path, how)
        os.utime(meta_path)  # most recently used
    except (OSError, ValueError):
        return None
    return entry if len(entry) == len(task) else None


def _unwritable(where, exc: OSError) -> None:
    if exc.errno == errno.ENOSPC:
        message = f"disk full while writing the pixel cache in {where}: entry discarded"
    else:
        message = f"pixel cache directory {where} is not writable ({exc.strerror or exc})"
    if message not in _warned:
        _warned.add(message)
        log.warning("%s; reading the images without it", message)
    return None


def _resized(task: Task, how: Recipe, num_workers: int):
    """Batches (lists) of the task's images after the recipe's resize, as uint8 arrays."""
    loader = DataLoader(
        _Resized(task, how), batch_size=64, num_workers=num_workers, collate_fn=list
    )
    yield from loader


class _Resized(Dataset):
    def __init__(self, task: Task, how: Recipe) -> None:
        self.task, self.how = task, how

    def __len__(self) -> int:
        return len(self.task)

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.how.resize(self.task.images.load(index)))


def _write_rows(fh, rows: np.ndarray) -> None:
    fh.write(np.ascontiguousarray(rows).tobytes())


def _build(path: Path, task: Task, how: Recipe, state, cap: int, num_workers: int) -> bool:
    """Write the entry (a temporary file renamed into place); False when it is not kept."""
    first = np.asarray(how.resize(task.images.load(0)))
    if first.dtype != np.uint8 or first.ndim != 3 or first.shape[2] != 3:
        return False
    shape = (len(task), first.shape[2], first.shape[0], first.shape[1])  # channels first
    nbytes = int(np.prod(shape))
    if nbytes > cap:
        log.info("pixel cache: %s (%d MiB) exceeds the size cap", task.name, nbytes >> 20)
        return False
    _evict(path.parent, cap - nbytes, keep=path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            header = {"descr": "|u1", "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(fh, header)
            for rows in _resized(task, how, num_workers):
                if any(r.shape != first.shape for r in rows):
                    log.info("pixel cache: %s has images of several sizes; not cached", task.name)
                    return False
                _write_rows(fh, np.stack(rows).transpose(0, 3, 1, 2))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        meta = {"n": len(task), "shape": list(shape), "files": state, "task": task.name}
        atomic_write_text(path.with_suffix(".json"), json.dumps(meta))
    except OSError as exc:
        _unwritable(path.parent, exc)
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _evict(root: Path, room: int, *, keep: Path) -> None:
    """Delete least recently used entries until the others take at most ``room`` bytes."""
    entries = []
    for npy in root.glob("*.npy"):
        if npy == keep:
            continue
        meta = npy.with_suffix(".json")
        try:
            used = meta.stat().st_mtime if meta.exists() else npy.stat().st_mtime
            entries.append((used, npy.stat().st_size, npy))
        except OSError:
            continue
    total = sum(size for _, size, _ in entries)
    for _, size, npy in sorted(entries):
        if total <= room:
            break
        npy.with_suffix(".json").unlink(missing_ok=True)
        npy.unlink(missing_ok=True)
        total -= size
        log.info("pixel cache: evicted %s", npy.name)
