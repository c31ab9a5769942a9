"""Remote-sensing tasks from their standard layouts: ``resisc45`` and WILDS ``fmow``.

``resisc45``: ``resisc45/NWPU-RESISC45/CLASS/CLASS_NNN.jpg`` with the split lists
``resisc45/resisc45-{train,val,test}.txt`` (one file name per line; the splits of Neumann et al.
2019 that the authors and torchgeo use).

``fmow`` (WILDS v1.1, official ``time_after_2016`` scheme): ``fmow_v1.1/rgb_metadata.csv`` and
``fmow_v1.1/images/rgb_img_{ROW}.png`` where ROW is the row of the metadata file. Splits:
``train``, ``val`` (ID val) and ``test`` (ID test) hold images taken before 2013; ``ood_val`` is
the ``val`` images of 2013-2015 and ``ood_test`` the ``test`` images from 2016 on. The domain
form names the shift: ``fmow@ood`` with split ``test`` (or ``val``) is ``ood_test`` (``ood_val``),
so an fMoW study trains on ``fmow`` and lists ``fmow@ood`` as its DG domain; ``fmow@id`` is
``fmow``. Class names are the WILDS categories with ``_`` read as a space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipgap.data import datasets
from clipgap.data.base import ImageFiles
from clipgap.data.catalog import Loaded, paper_builder, resource_lines
from clipgap.data.folder import class_display_name, files_fingerprint
from clipgap.errors import DataError

FMOW_OOD_YEAR = 2016  # the official split scheme time_after_2016
FMOW_VAL_YEARS = 3  # OOD val: the three years before the OOD test period


def read_resisc45(root: Path, split: str) -> Loaded:
    """Images listed in ``resisc45-{split}.txt``; the class is the name before ``_NNN.jpg``."""
    base = root / "resisc45"
    listing = base / f"resisc45-{split}.txt"
    classes = list(resource_lines("resisc45_classes.txt"))
    index = {c: i for i, c in enumerate(classes)}
    paths, labels = [], []
    for n, fname in enumerate(listing.read_text().split(), 1):
        cls = fname.rsplit("_", 1)[0]
        if cls not in index:
            raise DataError(
                f"{listing} line {n}: {fname!r} is not CLASS_NNN.jpg of a RESISC45 class"
            )
        paths.append(str(base / "NWPU-RESISC45" / cls / fname))
        labels.append(index[cls])
    fp = files_fingerprint(paths, labels, classes, listed_in=str(listing))
    names = [class_display_name(c) for c in classes]
    return Loaded(ImageFiles(paths), np.asarray(labels), names, fp)


def fmow_split(split: str, domain: str | None) -> str:
    """The fMoW split for a requested ``split`` and domain (``ood`` shifts test/val to OOD)."""
    if domain == "ood":
        if split in ("test", "val"):
            return f"ood_{split}"
        if split in ("ood_test", "ood_val"):
            return split
        raise DataError(
            f"fmow@ood has splits test and val (the OOD test/val images), not {split!r}; "
            f"train on fmow"
        )
    if domain == "id" and split.startswith("ood_"):
        raise DataError(f"fmow@id has no split {split!r}; use fmow@ood")
    return split


def fmow_masks(frame) -> dict[str, np.ndarray]:
    """Boolean row masks of the five WILDS splits, from ``split`` and ``timestamp`` columns."""
    import pandas as pd

    try:
        ts = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataError(f"fmow: cannot parse the timestamp column: {exc}") from None
    test_ood = np.asarray(ts >= pd.Timestamp(FMOW_OOD_YEAR, 1, 1, tz="UTC"))
    val_start = pd.Timestamp(FMOW_OOD_YEAR - FMOW_VAL_YEARS, 1, 1, tz="UTC")
    val_ood = np.asarray(ts >= val_start) & ~test_ood
    ood = test_ood | val_ood
    tag = frame["split"].astype(str).to_numpy()
    return {
        "train": (tag == "train") & ~ood,
        "val": (tag == "val") & ~ood,
        "test": (tag == "test") & ~ood,
        "ood_val": (tag == "val") & val_ood,
        "ood_test": (tag == "test") & test_ood,
    }


def read_fmow(root: Path, split: str) -> Loaded:
    import pandas as pd

    base = root / "fmow_v1.1"
    table = base / "rgb_metadata.csv"
    frame = pd.read_csv(table)
    gone = [c for c in ("split", "category", "timestamp") if c not in frame.columns]
    if gone:
        raise DataError(f"{table} is missing column(s) {', '.join(gone)}")
    categories = list(resource_lines("fmow_categories.txt"))
    index = {c: i for i, c in enumerate(categories)}
    rows = np.flatnonzero(fmow_masks(frame)[split])
    labels = []
    for r in rows:
        cat = frame["category"].iat[r]
        if cat not in index:
            raise DataError(f"{table} row {r}: unknown fMoW category {cat!r}")
        labels.append(index[cat])
    paths = [str(base / "images" / f"rgb_img_{r}.png") for r in rows]
    fp = files_fingerprint(paths, labels, categories, listed_in=str(table))
    names = [class_display_name(c) for c in categories]
    return Loaded(ImageFiles(paths), np.asarray(labels), names, fp)


datasets.register("resisc45")(paper_builder("resisc45", read_resisc45))
datasets.register("fmow")(paper_builder("fmow", read_fmow, map_split=fmow_split))
