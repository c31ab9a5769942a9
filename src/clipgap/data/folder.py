"""``folder:ROOT`` tasks: ROOT/SPLIT/CLASS/*.png, or DomainBed-style ROOT/DOMAIN/CLASS/*.

Also the helpers the other file-based kinds share: listing class folders, a stratified
train/test cut for data without official splits, and a fingerprint of image files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clipgap.config import digest
from clipgap.data import DataOptions, datasets
from clipgap.data.base import ImageFiles, Task
from clipgap.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
DEFAULT_TEMPLATES = ["a photo of a {c}."]
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def list_class_images(root: Path) -> tuple[list[str], list[str], list[int]]:
    """Class folder names (sorted), image paths and labels under ``root/CLASS/*``."""
    if not root.is_dir():
        raise DataError(f"folder {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"folder {root} has no class subfolders (expected {root}/CLASS/*.png)")
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = image_files(root / name)
        if not files:
            raise DataError(f"class folder {root / name} has no images")
        paths += files
        labels += [label] * len(files)
    return classes, paths, labels


def image_files(folder: Path) -> list[str]:
    """Sorted paths of the image files directly inside ``folder`` (by suffix, case-insensitive)."""
    with os.scandir(folder) as entries:  # DirEntry.is_file needs no extra stat on most systems
        return sorted(
            e.path
            for e in entries
            if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES
        )


def files_fingerprint(
    paths: Sequence[str], labels: Sequence[int], classes: Sequence[str], *, listed_in: str = ""
) -> str:
    """Hash of every file's path, size and mtime plus the labels and class list.

    A file that does not exist raises :class:`DataError` naming it (and ``listed_in``, the
    index file that named it, when given).
    """
    stats = []
    for p in paths:
        try:
            st = Path(p).stat()
        except FileNotFoundError:
            where = f" (listed in {listed_in})" if listed_in else ""
            raise DataError(f"missing image file {p}{where}") from None
        stats.append((str(p), st.st_size, int(st.st_mtime_ns)))
    return digest(stats, [int(x) for x in labels], list(classes))


def class_display_name(folder_name: str) -> str:
    """``golden_retriever`` -> ``golden retriever``."""
    return folder_name.replace("_", " ")


def split_indices(
    labels: np.ndarray, split: str, *, what: str, test_fraction: float = TEST_FRACTION
) -> np.ndarray:
    """Sorted indices of ``split`` in a deterministic stratified cut of data without splits.

    Per class, ``round(test_fraction * n)`` images (at least 1 when the class has 2 or more)
    go to ``test``, the rest to ``train``; ``all`` keeps everything. Seed 0, so the cut is
    the same on every machine for the same labels.
    """
    labels = np.asarray(labels)
    if split == "all":
        return np.arange(len(labels))
    if split not in ("train", "test"):
        raise DataError(f"{what}: split must be train, test or all, not {split!r}")
    rng = np.random.default_rng(SPLIT_SEED)
    test: list[np.ndarray] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_test = int(round(test_fraction * len(members)))
        n_test = min(max(n_test, 1), len(members) - 1)  # 0 for a single image
        test.append(rng.permutation(members)[:n_test])
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[np.concatenate(test)] = True
    return np.flatnonzero(is_test if split == "test" else ~is_test)


@datasets.register("folder")
def folder_task(arg: str, *, split: str, domain: str | None, options: DataOptions) -> Task:
    """ROOT/SPLIT/CLASS/* (``domain`` unset) or ROOT/DOMAIN/CLASS/* (multi-domain).

    For a multi-domain (DomainBed) tree, ``@DOMAIN`` picks one domain and ``@A+B`` pools
    several, e.g. train on ``folder:ROOT@A+B`` and test on the held-out ``folder:ROOT@C``.
    Every named domain must have the same class folders. A domain has no official split:
    ``train``/``test`` are a stratified 80/20 cut of each pooled set (seed 0, see
    :func:`split_indices`) and ``all`` is every image (use it to score a held-out domain on
    all its images).
    """
    if not arg:
        raise DataError("folder dataset needs a root: folder:ROOT")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise DataError(f"folder {root} does not exist")
    if domain is None:
        split_root = root / split
        if not split_root.is_dir():
            have = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise DataError(
                f"folder {root} has no '{split}' split folder (found: {', '.join(have) or 'none'}; "
                f"expected ROOT/{split}/CLASS/*.png, or name a domain: folder:ROOT@DOMAIN)"
            )
        classes, paths, labels = list_class_images(split_root)
        return Task(
            name=f"folder:{root}",
            split=split,
            images=ImageFiles(paths),
            labels=np.asarray(labels),
            class_names=[class_display_name(c) for c in classes],
            templates=list(DEFAULT_TEMPLATES),
            fingerprint=files_fingerprint(paths, labels, classes),
        )
    return _domain_task(root, domain, split)


def _domain_task(root: Path, domain: str, split: str) -> Task:
    available = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    wanted = domain.split("+")
    if len(set(wanted)) != len(wanted) or "" in wanted:
        raise DataError(
            f"folder {root}: bad domain list {domain!r} (expected A or A+B, no repeats)"
        )
    all_paths: list[str] = []
    all_labels: list[int] = []
    classes: list[str] | None = None
    for d in wanted:
        if d not in available:
            raise DataError(
                f"folder {root} has no domain {d!r}; domains: {', '.join(available) or 'none'}"
            )
        cls, paths, labels = list_class_images(root / d)
        if classes is None:
            classes = cls
        elif cls != classes:
            raise DataError(_class_mismatch(root, wanted[0], classes, d, cls))
        all_paths += paths
        all_labels += labels
    assert classes is not None
    labels_arr = np.asarray(all_labels)
    keep = split_indices(labels_arr, split, what=f"multi-domain folder {root}")
    paths = [all_paths[i] for i in keep]
    labels = labels_arr[keep]
    return Task(
        name=f"folder:{root}",
        split=split,
        images=ImageFiles(paths),
        labels=labels,
        class_names=[class_display_name(c) for c in classes],
        templates=list(DEFAULT_TEMPLATES),
        fingerprint=files_fingerprint(paths, labels.tolist(), classes),
        domain=domain,
        meta={"domains": wanted},
    )


def _class_mismatch(root: Path, ref: str, ref_cls: list[str], d: str, cls: list[str]) -> str:
    missing = sorted(set(ref_cls) - set(cls))
    extra = sorted(set(cls) - set(ref_cls))
    parts = []
    if missing:
        parts.append(f"lacks {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    if extra:
        parts.append(f"adds {', '.join(extra[:5])}" + (" ..." if len(extra) > 5 else ""))
    return (
        f"domain {d!r} of {root} has different classes from domain {ref!r}: "
        f"{'; '.join(parts)} (all pooled domains need the same class folders)"
    )
