"""``folder:ROOT`` tasks: ROOT/SPLIT/CLASS/*.png, or DomainBed-style ROOT/DOMAIN/CLASS/*."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipgap.data import DataOptions, datasets
from clipgap.data.base import ImageFiles, Task, digest
from clipgap.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
DEFAULT_TEMPLATES = ["a photo of a {c}."]


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
        files = sorted(
            str(p)
            for p in (root / name).iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(f"class folder {root / name} has no images")
        paths += files
        labels += [label] * len(files)
    return classes, paths, labels


def files_fingerprint(paths: list[str], labels: list[int], classes: list[str]) -> str:
    stats = []
    for p in paths:
        st = Path(p).stat()
        stats.append((p, st.st_size, int(st.st_mtime_ns)))
    return digest(stats, labels, classes)


def class_display_name(folder_name: str) -> str:
    """``golden_retriever`` -> ``golden retriever``."""
    return folder_name.replace("_", " ")


@datasets.register("folder")
def folder_task(arg: str, *, split: str, domain: str | None, options: DataOptions) -> Task:
    """ROOT/SPLIT/CLASS/* (``domain`` unset) or ROOT/DOMAIN/CLASS/* (multi-domain).

    For a multi-domain tree, ``@DOMAIN`` picks one domain (or ``@A+B`` several, pooled);
    the split of a single domain is a deterministic 80/20 train/test cut (seed 0).
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
    class_sets = {}
    all_paths: list[str] = []
    all_labels: list[int] = []
    classes: list[str] | None = None
    for d in wanted:
        if d not in available:
            raise DataError(
                f"folder {root} has no domain {d!r}; domains: {', '.join(available) or 'none'}"
            )
        cls, paths, labels = list_class_images(root / d)
        class_sets[d] = cls
        if classes is None:
            classes = cls
        elif cls != classes:
            raise DataError(
                f"domain {d!r} of {root} has classes {cls} but {wanted[0]!r} has {classes}"
            )
        all_paths += paths
        all_labels += labels
    assert classes is not None
    labels_arr = np.asarray(all_labels)
    if split in ("train", "test"):
        rng = np.random.default_rng(0)
        order = rng.permutation(len(all_paths))
        n_test = max(1, int(round(0.2 * len(order))))
        keep = np.sort(order[:n_test] if split == "test" else order[n_test:])
    elif split == "all":
        keep = np.arange(len(all_paths))
    else:
        raise DataError(
            f"multi-domain folder {root}: split must be train, test or all, not {split!r}"
        )
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
    )
