"""ImageNet and its shifted test sets (the DG domains of an ImageNet study), from folder layouts.

Under the data root (or ``KIND:DIR``):

- ``imagenet``: ``imagenet/train/WNID/*`` and ``imagenet/val/WNID/*`` (split ``test`` = val),
  the layout ``torchvision.datasets.ImageNet`` unpacks the ILSVRC2012 archives into;
- ``imagenet-v2``: ``imagenetv2-matched-frequency-format-val/{0..999}/*`` (folder = class index);
- ``imagenet-sketch``: ``imagenet-sketch/WNID/*`` (or ``sketch/WNID/*``, as the zip unpacks);
- ``imagenet-r`` / ``imagenet-a``: ``imagenet-r/WNID/*`` / ``imagenet-a/WNID/*``, 200 WNIDs each.

Labels index the task's own classes in sorted-WNID order, so for R and A label ``k`` is the
k-th of that subset's 200 classes and its class name is the matching OpenAI ImageNet name.
``task.meta["parent_class_indices"][k]`` is class ``k``'s index among ImageNet's 1000 classes
(identity for the 1000-class sets), for heads trained on all of ImageNet.
WNID lists ship in ``clipgap/data/resources`` (the standard lists, as in timm's ``_info``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipgap.data import datasets
from clipgap.data.base import ImageFiles
from clipgap.data.catalog import (
    Loaded,
    imagenet_classnames,
    imagenet_wnids,
    paper_builder,
    resolve,
)
from clipgap.data.folder import files_fingerprint, image_files
from clipgap.errors import DataError


def _folders(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}


def _check_class_folders(name: str, root: Path, expected: list[str]) -> None:
    found = _folders(root)
    if not found and image_files(root):
        raise DataError(
            f"{name}: {root} holds images directly; sort them into one folder per class "
            f"(WNID), e.g. with torchvision.datasets.ImageNet or the usual valprep.sh script"
        )
    unknown = sorted(found - set(expected))
    if unknown:
        raise DataError(
            f"{name}: {root} has folder(s) {', '.join(unknown[:3])} that are not among its "
            f"{len(expected)} classes"
        )
    absent = [c for c in expected if c not in found]
    if absent:
        more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
        raise DataError(f"{name}: missing class folder {root / absent[0]}{more} (partial copy?)")


def _class_folder_task(
    name: str, root: Path, folders: list[str], parent: list[int], class_names: list[str]
) -> Loaded:
    """Images of ``root/FOLDER/*`` labelled by the folder's position in ``folders``."""
    _check_class_folders(name, root, folders)
    paths: list[str] = []
    labels: list[int] = []
    for label, folder in enumerate(folders):
        files = image_files(root / folder)
        if not files:
            raise DataError(f"{name}: class folder {root / folder} has no images")
        paths += files
        labels += [label] * len(files)
    fp = files_fingerprint(paths, labels, folders)
    meta = {"parent_task": "imagenet", "parent_class_indices": parent}
    return Loaded(ImageFiles(paths), np.asarray(labels), class_names, fp, meta)


def _subset_reader(name: str, folder: str, subset: str):
    def read(root: Path, split: str) -> Loaded:
        all_wnids, all_names = imagenet_wnids(), imagenet_classnames()
        wnids = imagenet_wnids(subset) if subset else all_wnids
        position = {w: i for i, w in enumerate(all_wnids)}
        parent = [position[w] for w in wnids]
        base = resolve(root, folder)
        assert base is not None  # checked by catalog.require
        if name == "imagenet":
            base = base / ("train" if split == "train" else "val")
        return _class_folder_task(name, base, wnids, parent, [all_names[i] for i in parent])

    return read


def _read_v2(root: Path, split: str) -> Loaded:
    folders = [str(i) for i in range(1000)]
    base = root / "imagenetv2-matched-frequency-format-val"
    return _class_folder_task(
        "imagenet-v2", base, folders, list(range(1000)), imagenet_classnames()
    )


_READERS = {
    "imagenet": _subset_reader("imagenet", "imagenet", ""),
    "imagenet-v2": _read_v2,
    "imagenet-sketch": _subset_reader("imagenet-sketch", "imagenet-sketch|sketch", ""),
    "imagenet-r": _subset_reader("imagenet-r", "imagenet-r", "r"),
    "imagenet-a": _subset_reader("imagenet-a", "imagenet-a", "a"),
}

for _name, _read in _READERS.items():
    datasets.register(_name)(paper_builder(_name, _read))
