"""The paper's tasks: prompt templates, class names, and what files each needs and from where.

``PAPER_TASKS`` maps a dataset kind (``cifar100``, ``fmow``, ``imagenet-r``...) to a
:class:`PaperTask`, read from the data file ``resources/paper_tasks.json``. Paths in ``needs``
are relative to the data root (``--data-root``, ``$CLIPGAP_DATA`` or ``./data``; a spec
``KIND:DIR`` uses DIR instead) and ``a|b`` means either. The layouts are the ones torchvision
writes for its datasets, and each archive's own for the rest. Templates are the authors' single
template per task (science.md); class names come from the data or from the lists shipped in
``resources/`` (OpenAI's for EuroSAT, GTSRB and ImageNet).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from clipgap.config import digest
from clipgap.data import DataOptions
from clipgap.data.base import ImageSource, Task
from clipgap.errors import DataError

log = logging.getLogger(__name__)

CATALOG_FILE = "paper_tasks.json"


@dataclass(frozen=True)
class PaperTask:
    """One of the paper's tasks: how CLIP is prompted and where its files come from."""

    name: str
    description: str
    templates: tuple[str, ...]
    needs: Mapping[str, tuple[str, ...]]  # split -> required paths under the data root
    source: str  # where to get the files when they are missing
    torchvision_download: bool = False
    domains: tuple[str, ...] = ()
    images: Mapping[str, int] = field(default_factory=dict)  # split -> published image count

    def __post_init__(self) -> None:
        if not self.templates or any("{c}" not in t for t in self.templates):
            raise DataError(f"task {self.name}: every template needs a '{{c}}' placeholder")
        if not self.needs or not all(self.needs.values()):
            raise DataError(f"task {self.name}: every split must list the files it needs")

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.needs)


def _load_catalog() -> dict[str, PaperTask]:
    raw = json.loads(resource_text(CATALOG_FILE))
    tasks = {}
    for name, entry in raw.items():
        try:
            tasks[name] = PaperTask(
                name=name,
                description=entry["description"],
                templates=tuple(entry["templates"]),
                needs={split: tuple(paths) for split, paths in entry["needs"].items()},
                source=entry["source"],
                torchvision_download=bool(entry.get("torchvision_download", False)),
                domains=tuple(entry.get("domains", ())),
                images={split: int(n) for split, n in entry.get("images", {}).items()},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{CATALOG_FILE}: entry {name!r} is malformed ({exc!r})") from None
    return tasks


def data_root(arg: str, options: DataOptions) -> Path:
    """The directory a paper task's files live under: ``arg`` if given, else the data root."""
    return (Path(arg).expanduser() if arg else options.root).absolute()


def check_split(name: str, split: str, domain: str | None) -> PaperTask:
    """The task's catalog entry, after checking ``split`` and ``domain`` are ones it has."""
    info = PAPER_TASKS[name]
    if domain is not None and domain not in info.domains:
        have = ", ".join(info.domains) if info.domains else "none"
        raise DataError(f"{name} has no domain {domain!r} (domains: {have})")
    if split not in info.needs:
        raise DataError(f"{name} has no split {split!r}; choose from {', '.join(info.splits)}")
    return info


def resolve(root: Path, need: str) -> Path | None:
    """The first existing alternative of ``need`` (``a|b``) under ``root``, else None."""
    for alt in need.split("|"):
        if (root / alt).exists():
            return root / alt
    return None


def missing(name: str, root: Path, split: str) -> str | None:
    """The first required path of ``name``/``split`` that is absent under ``root``, or None."""
    for need in PAPER_TASKS[name].needs[split]:
        if resolve(root, need) is None:
            alts = need.split("|")
            more = f" (or {', '.join(str(root / a) for a in alts[1:])})" if alts[1:] else ""
            return f"{root / alts[0]}{more}"
    return None


def require(name: str, root: Path, split: str) -> None:
    """Raise a one-line :class:`DataError` naming the first missing file and how to get it."""
    gone = missing(name, root, split)
    if gone is not None:
        raise DataError(
            f"{name} ({split}): missing {gone} (data root {root}: set it with --data-root or "
            f"$CLIPGAP_DATA); {PAPER_TASKS[name].source}"
        )


@dataclass
class Loaded:
    """What a task reader hands back: images, labels, class names and a data fingerprint."""

    images: ImageSource
    labels: np.ndarray
    class_names: list[str]
    fingerprint: str
    meta: dict | None = None


Reader = Callable[[Path, str], Loaded]
Downloader = Callable[[Path, str], None]


def paper_builder(
    name: str,
    read: Reader,
    *,
    download: Downloader | None = None,
    map_split: Callable[[str, str | None], str] | None = None,
) -> Callable[..., Task]:
    """A dataset builder ``(arg, *, split, domain, options) -> Task`` for catalog task ``name``.

    It checks the split, downloads (only when ``options.download`` and files are missing and
    ``download`` exists), names the first missing file otherwise, then calls ``read(root, split)``.
    ``map_split(split, domain)`` turns a requested split and domain into the task's own split.
    """

    def build(arg: str, *, split: str, domain: str | None, options: DataOptions) -> Task:
        split = map_split(split, domain) if map_split else split
        info = check_split(name, split, domain)
        root = data_root(arg, options)
        if download is not None and options.download and missing(name, root, split):
            log.info("downloading %s (%s) into %s", name, split, root)
            try:
                download(root, split)
            except Exception as exc:  # network and archive errors come in many types
                first = (str(exc).splitlines() or [""])[0]
                raise DataError(
                    f"{name}: download into {root} failed ({type(exc).__name__}: {first}); "
                    f"{info.source}"
                ) from None
        require(name, root, split)
        got = read(root, split)
        return Task(
            name=name,
            split=split,
            images=got.images,
            labels=got.labels,
            class_names=got.class_names,
            templates=list(info.templates),
            fingerprint=digest(name, split, domain, got.fingerprint),
            domain=domain,
            meta=got.meta or {},
        )

    build.__name__ = f"{name.replace('-', '_')}_task"
    build.__doc__ = info_line(name)
    return build


def info_line(name: str) -> str:
    """One line describing a paper task and its splits (for listings and docstrings)."""
    info = PAPER_TASKS[name]
    return f"{info.description}. Splits: {', '.join(info.splits)}."


def resource_text(filename: str) -> str:
    """Text of a file shipped in ``clipgap/data/resources``."""
    return resources.files("clipgap.data").joinpath("resources", filename).read_text("utf-8")


@cache
def resource_lines(filename: str) -> tuple[str, ...]:
    """Non-empty lines of a file shipped in ``clipgap/data/resources``."""
    return tuple(ln.strip() for ln in resource_text(filename).splitlines() if ln.strip())


def eurosat_classnames() -> dict[str, str]:
    """EuroSAT folder name -> OpenAI class name (``AnnualCrop`` -> ``annual crop land``)."""
    return dict(line.split("\t") for line in resource_lines("eurosat_classnames.tsv"))


def gtsrb_classnames() -> list[str]:
    """The 43 GTSRB class names of OpenAI's CLIP prompts, in ClassId order."""
    return list(resource_lines("gtsrb_classnames.txt"))


def imagenet_wnids(subset: str = "") -> list[str]:
    """Sorted WordNet ids of ImageNet-1k (``subset=""``), or of ``"a"``/``"r"`` (200 each)."""
    return list(resource_lines(f"imagenet_{subset + '_' if subset else ''}wnids.txt"))


def imagenet_classnames() -> list[str]:
    """OpenAI's 1000 ImageNet class names, indexed like the sorted WordNet ids."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    return list(IMAGENET_CLASSNAMES)


PAPER_TASKS: dict[str, PaperTask] = _load_catalog()
"""Every paper task by dataset kind, from ``resources/paper_tasks.json``."""
