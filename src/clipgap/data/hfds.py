"""``hfds:PATH_OR_ID[:CONFIG]`` tasks: Hugging Face ``datasets``.

Where the data comes from:

- a folder written by ``save_to_disk`` (``dataset_dict.json`` or ``state.json`` inside):
  ``datasets.load_from_disk``; a single saved ``Dataset`` counts as one split;
- a folder of ``.parquet`` files (at any depth): ``load_dataset("parquet", data_files=...)``
  with splits named by file name (:func:`parquet_splits`: ``train-*.parquet``,
  ``test.parquet``, ``data/validation-00000-of-00001.parquet``, ``train/0000.parquet``); its
  Arrow copy is cached in the clipgap cache;
- otherwise a hub id (``org/name``): ``datasets.load_dataset(ID, CONFIG)``, only with
  ``--download`` (``data.download``), needing the network or the HF cache.

``CONFIG`` is the hub dataset's config, or for a local folder a subfolder ``PATH/CONFIG``
holding one of the two local layouts.

Splits: ``all`` is every split. A dataset with a single split (e.g. only ``train``) has no
held-out data, so ``train`` and ``test`` are a stratified 80/20 cut of it (seed 0, as for
``csv:`` and DomainBed folders). Otherwise ``train``, ``test`` (or any split name) is the split
of that name; a missing ``test`` falls back to ``validation``, ``valid`` or ``val``; anything
else is a DataError naming the splits found.

Columns: the image column is ``--image-column`` or the first ``Image`` feature (a named column of
paths or bytes is cast to ``Image``); the label column is ``--label-column`` or the first
``ClassLabel`` feature. Class names are the ``ClassLabel`` names (underscores shown as spaces,
as for folder class names), else the sorted unique labels as strings (integers sorted as
numbers) over every split. Prompt template: ``a photo of a {c}.``. ``@DOMAIN`` is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clipgap.config import digest
from clipgap.data import DataOptions, datasets
from clipgap.data.base import Task
from clipgap.data.folder import DEFAULT_TEMPLATES, class_display_name, split_indices
from clipgap.data.hfds_source import first_line, open_source
from clipgap.errors import DataError

TEST_FALLBACKS = ("validation", "valid", "val")


@dataclass
class HFImages:
    """Images of one column of a ``datasets.Dataset``, decoded on access."""

    dataset: Any
    column: str
    where: str

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, index: int) -> Image.Image:
        try:
            image = self.dataset[int(index)][self.column]
        except Exception as exc:  # datasets / PIL raise many types for undecodable rows
            raise DataError(f"{self.where}: cannot decode image {index}: {exc}") from None
        if image is None:
            raise DataError(f"{self.where}: row {index} has no image in column {self.column!r}")
        return image.convert("RGB")


@datasets.register("hfds")
def hfds_task(arg: str, *, split: str, domain: str | None, options: DataOptions) -> Task:
    """A Hugging Face dataset as a task (see the module docstring)."""
    import datasets as hf

    if not arg:
        raise DataError("hfds dataset needs a folder or hub id: hfds:PATH_OR_ID[:CONFIG]")
    if domain is not None:
        raise DataError(f"hfds:{arg} has no domains; drop @{domain}")
    where = f"hfds:{arg}"
    splits = open_source(arg, options)
    image_col, label_col = pick_columns(where, splits, options)
    classes, to_index = class_list(where, splits, label_col)
    name, ds, cut = choose_split(where, splits, split)
    labels = to_index(ds[label_col])
    if cut is not None:
        keep = split_indices(labels, cut, what=where)
        ds, labels = ds.select(keep), labels[keep]
    ds = ds.select_columns([image_col])
    if not isinstance(ds.features[image_col], hf.Image):
        ds = cast_images(where, ds, image_col)
    return Task(
        name=where,
        split=split,
        images=HFImages(ds, image_col, f"{where} ({name})"),
        labels=labels,
        class_names=classes,
        templates=list(DEFAULT_TEMPLATES),
        fingerprint=digest(where, name, cut, image_col, fingerprint(ds), labels.tolist(), classes),
    )


def describe(features) -> str:
    """``image (Image), label (ClassLabel), note (string)``: the columns and their types."""
    import datasets as hf

    def kind(feature) -> str:
        if isinstance(feature, hf.Value):
            return str(feature.dtype)
        return type(feature).__name__

    return ", ".join(f"{name} ({kind(f)})" for name, f in features.items())


def _find(where: str, features, named: str | None, kind: type, what: str) -> str:
    if named is not None:
        if named not in features:
            raise DataError(
                f"{where} has no column {named!r} (--{what}-column); columns: {describe(features)}"
            )
        return named
    for name, feature in features.items():
        if isinstance(feature, kind):
            return name
    raise DataError(
        f"{where} has no {what} column (no {kind.__name__} feature); columns: "
        f"{describe(features)}; name one with --{what}-column (data.{what}_column in a study)"
    )


def pick_columns(where: str, splits: dict[str, Any], options: DataOptions) -> tuple[str, str]:
    """(image column, label column), detected from the first split's features or as named."""
    import datasets as hf

    if not splits:
        raise DataError(f"{where} holds no splits")
    features = next(iter(splits.values())).features
    image = _find(where, features, options.image_column, hf.Image, "image")
    label = _find(where, features, options.label_column, hf.ClassLabel, "label")
    if image == label:
        raise DataError(f"{where}: image and label columns are both {image!r}")
    for name, ds in splits.items():
        missing = [c for c in (image, label) if c not in ds.features]
        if missing:
            raise DataError(f"{where}: split {name!r} lacks column {missing[0]!r}")
    return image, label


def class_list(where: str, splits: dict[str, Any], column: str):
    """(class names, function mapping a label column to class indices) over every split."""
    import datasets as hf

    feature = next(iter(splits.values())).features[column]
    if isinstance(feature, hf.ClassLabel):
        names = [class_display_name(n) for n in feature.names]

        def as_index(values) -> np.ndarray:
            labels = np.asarray(list(values), dtype=np.int64)
            if (labels < 0).any():
                i = int(np.flatnonzero(labels < 0)[0])
                raise DataError(f"{where}: row {i} has no label ({labels[i]} in {column!r})")
            return labels

        return names, as_index
    values = {v for ds in splits.values() for v in ds[column]}
    if None in values:
        raise DataError(f"{where}: label column {column!r} has empty cells")
    ordered = sorted(values, key=lambda v: (isinstance(v, str), v))
    if len({str(v) for v in ordered}) != len(ordered):
        raise DataError(f"{where}: labels of column {column!r} collide as strings")
    index = {v: i for i, v in enumerate(ordered)}
    return [str(v) for v in ordered], lambda vals: np.asarray([index[v] for v in vals], np.int64)


def choose_split(where: str, splits: dict[str, Any], split: str):
    """(split name used, dataset, ``train``/``test`` to cut from it or None)."""
    import datasets as hf

    if split == "all":
        return "all", hf.concatenate_datasets(list(splits.values())), None
    if len(splits) == 1 and split in ("train", "test"):
        name, ds = next(iter(splits.items()))
        return name, ds, split
    if split in splits:
        return split, splits[split], None
    if split == "test":
        for name in TEST_FALLBACKS:
            if name in splits:
                return name, splits[name], None
    extra = f" (nor {', '.join(TEST_FALLBACKS)})" if split == "test" else ""
    raise DataError(f"{where} has no split {split!r}{extra}; splits: {', '.join(splits)}")


def cast_images(where: str, ds, column: str):
    """``ds`` with ``column`` (paths or bytes) cast to the ``Image`` feature."""
    import datasets as hf

    try:
        return ds.cast_column(column, hf.Image())
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{where}: column {column!r} ({describe({column: ds.features[column]})}) does not "
            f"hold images: {first_line(exc)}"
        ) from None


def fingerprint(ds) -> list:
    """What identifies a dataset's content: its fingerprint and its Arrow files' stats."""
    stats = []
    for entry in ds.cache_files:
        path = Path(entry["filename"])
        st = path.stat() if path.is_file() else None
        stats.append((str(path), st.st_size if st else 0, st.st_mtime_ns if st else 0))
    return [getattr(ds, "_fingerprint", None), stats]
