"""``wds:DIR`` tasks: CLIP_benchmark-style webdataset shards, read with the standard ``tarfile``.

DIR holds ``classnames.txt`` (one class per line, label order), optionally
``zeroshot_classification_templates.txt`` (one template per line with ``{c}``; default
``a photo of a {c}.``), and uncompressed ``.tar`` shards for each split: ``DIR/SPLIT/*.tar``,
or ``DIR/*.tar`` whose names contain the split as a word (``test-000.tar``, ``cifar_test_1.tar``).
A sample is the tar members sharing a key (the path up to the first dot of the file name): an
image (``.jpg``, ``.jpeg``, ``.png`` or ``.webp``) and a ``.cls`` member holding the integer
label. Images are read on demand by seeking into the shard; nothing is unpacked.

``wds:hf:ID`` takes the shards of Hugging Face dataset ID (CLIP_benchmark's ``djghosh/wds_*``
layout) from the local Hugging Face cache, or from the hub with ``--download``.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from clipgap.config import digest
from clipgap.data import DataOptions, datasets
from clipgap.data.base import Task
from clipgap.data.folder import DEFAULT_TEMPLATES
from clipgap.errors import DataError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
CLASSNAMES = "classnames.txt"
TEMPLATES = "zeroshot_classification_templates.txt"


@dataclass
class TarImages:
    """Images stored inside uncompressed tar shards, addressed by (shard, offset, size)."""

    shards: list[str]
    members: list[tuple[int, int, int, str]]  # shard index, data offset, size, sample key

    def __len__(self) -> int:
        return len(self.members)

    def load(self, index: int) -> Image.Image:
        shard, offset, size, key = self.members[index]
        try:
            with open(self.shards[shard], "rb") as fh:
                fh.seek(offset)
                blob = fh.read(size)
            with Image.open(io.BytesIO(blob)) as img:
                return img.convert("RGB")
        except Exception as exc:  # PIL and I/O raise many types
            raise DataError(
                f"cannot read image of sample {key!r} in {self.shards[shard]}: "
                f"{type(exc).__name__}: {exc}"
            ) from None


@datasets.register("wds")
def wds_task(arg: str, *, split: str, domain: str | None, options: DataOptions) -> Task:
    """Images and labels from webdataset shards (see the module docstring)."""
    if not arg:
        raise DataError("wds dataset needs a directory: wds:DIR (or wds:hf:ID)")
    if domain is not None:
        raise DataError(f"wds datasets have no domains (got @{domain})")
    root = hf_snapshot(arg[3:], split, options) if arg.startswith("hf:") else Path(arg)
    root = root.expanduser()
    if not root.is_dir():
        raise DataError(f"webdataset directory {root} does not exist")
    classes = _lines(root / CLASSNAMES, required=True)
    templates = _lines(root / TEMPLATES, required=False) or list(DEFAULT_TEMPLATES)
    shards = find_shards(root, split)
    members, labels = index_shards(shards)
    bad = np.flatnonzero((labels < 0) | (labels >= len(classes)))
    if len(bad):
        shard, _, _, key = members[bad[0]]
        raise DataError(
            f"sample {key!r} in {shards[shard]} has label {labels[bad[0]]} but {root / CLASSNAMES} "
            f"lists {len(classes)} classes"
        )
    stats = [(s, os.stat(s).st_size, os.stat(s).st_mtime_ns) for s in shards]
    return Task(
        name=f"wds:{arg}",
        split=split,
        images=TarImages(shards, members),
        labels=labels,
        class_names=classes,
        templates=templates,
        fingerprint=digest(str(root), split, stats, labels.tolist(), classes, templates),
    )


def _lines(path: Path, *, required: bool) -> list[str]:
    if not path.is_file():
        if required:
            raise DataError(f"webdataset directory {path.parent} has no {path.name}")
        return []
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if required and not lines:
        raise DataError(f"{path} is empty")
    return lines


def _natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def find_shards(root: Path, split: str) -> list[str]:
    """The split's ``.tar`` shards in natural name order (``2.tar`` before ``10.tar``)."""
    if (root / split).is_dir():
        shards = sorted((root / split).glob("*.tar"), key=_natural)
    else:
        shards = sorted(
            (p for p in root.glob("*.tar") if split in re.split(r"[^A-Za-z0-9]+", p.stem)),
            key=_natural,
        )
    if not shards:
        raise DataError(
            f"webdataset directory {root} has no shards for split {split!r} "
            f"(expected {root / split}/*.tar or {root}/*{split}*.tar)"
        )
    return [str(s) for s in shards]


def index_shards(shards: list[str]) -> tuple[list[tuple[int, int, int, str]], np.ndarray]:
    """Every sample's image location and label, in shard order then tar order."""
    members: list[tuple[int, int, int, str]] = []
    labels: list[int] = []
    for s, shard in enumerate(shards):
        images, classes, order = _scan(shard)
        for key in order:
            if key in images and key not in classes:
                raise DataError(f"sample {key!r} in {shard} has an image but no .cls label")
            if key in classes and key not in images:
                raise DataError(f"sample {key!r} in {shard} has a .cls label but no image")
            if key in images:
                members.append((s, *images[key], key))
                labels.append(classes[key])
    if not members:
        raise DataError(f"shards {shards[0]}... hold no image+.cls samples")
    return members, np.asarray(labels, dtype=np.int64)


def _scan(shard: str) -> tuple[dict[str, tuple[int, int]], dict[str, int], list[str]]:
    images: dict[str, tuple[int, int]] = {}
    classes: dict[str, int] = {}
    order: list[str] = []
    try:
        with tarfile.open(shard, mode="r:") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                folder, name = os.path.split(m.name)
                stem, _, ext = name.partition(".")
                key, ext = os.path.join(folder, stem), ext.lower()
                if key not in images and key not in classes:
                    order.append(key)
                if ext in IMAGE_EXTS and key not in images:
                    images[key] = (m.offset_data, m.size)
                elif ext == "cls":
                    text = tar.extractfile(m).read().decode("utf-8", "replace").strip()
                    if not text.lstrip("-").isdigit():
                        raise DataError(
                            f"sample {key!r} in {shard}: .cls holds {text!r}, not an int"
                        )
                    classes[key] = int(text)
    except tarfile.TarError as exc:
        raise DataError(f"cannot read shard {shard} as an uncompressed tar: {exc}") from None
    return images, classes, list(dict.fromkeys(order))


def hf_snapshot(repo_id: str, split: str, options: DataOptions) -> Path:
    """Local folder of Hugging Face dataset ``repo_id``'s split shards and class/template files."""
    if not repo_id:
        raise DataError("wds:hf: needs a dataset id, e.g. wds:hf:djghosh/wds_cifar100_test")
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(
            repo_id=repo_id,
            repo_type="dataset",
            allow_patterns=[f"{split}/*", CLASSNAMES, TEMPLATES],
            local_files_only=not options.download,
        )
    except Exception as exc:  # offline, unknown id, auth...: all mean "not available here"
        how = (
            "the Hugging Face hub is unreachable or the id is wrong"
            if options.download
            else "it is not in the local Hugging Face cache; run with --download"
        )
        raise DataError(
            f"wds:hf:{repo_id}: cannot get the dataset ({type(exc).__name__}): {how}, or fetch it "
            f"elsewhere (huggingface-cli download --repo-type dataset {repo_id} --local-dir DIR) "
            f"and use wds:DIR"
        ) from None
    return Path(path)
