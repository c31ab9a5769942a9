"""Task loading: ``load_task("folder:ROOT", split="test")`` and the dataset registry.

A dataset spec is ``KIND[:ARG][@DOMAIN]``: ``folder:/data/pets``, ``world:shapes@sketch``,
``cifar100``. Each kind registers a builder ``(arg, *, split, domain, options) -> Task``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clipgap.config import digest  # re-exported: callers that hash data import it from here
from clipgap.data.base import ImageArrays, ImageFiles, ImageSource, Task
from clipgap.errors import DataError
from clipgap.registry import Registry

__all__ = [
    "DataOptions",
    "ImageArrays",
    "ImageFiles",
    "ImageSource",
    "Task",
    "datasets",
    "digest",
    "load_task",
    "parse_spec",
]


@dataclass(frozen=True)
class DataOptions:
    """Where data lives and how it may be obtained.

    ``data_root`` defaults to ``$CLIPGAP_DATA`` (else ``./data``); nothing is downloaded unless
    ``download`` is true. ``classnames_file``/``templates_file`` override a task's own
    (one name or template per line). ``image_column``/``label_column`` name the columns of a
    table-like dataset (``hfds:``) instead of detecting them.
    """

    data_root: str | None = None
    download: bool = False
    classnames_file: str | None = None
    templates_file: str | None = None
    image_column: str | None = None
    label_column: str | None = None

    @property
    def root(self) -> Path:
        return Path(self.data_root or os.environ.get("CLIPGAP_DATA") or "data")


Builder = Callable[..., Task]
datasets: Registry[Builder] = Registry(
    "dataset",
    plugins=[
        "clipgap.data.folder",
        "clipgap.data.csv_task",
        "clipgap.data.torchvision_tasks",
        "clipgap.data.imagenet",
        "clipgap.data.webdataset",
        "clipgap.data.remote_sensing",
        "clipgap.data.hfds",
        "clipgap.world.tasks",
    ],
)


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """Split ``KIND[:ARG][@DOMAIN]`` into its parts."""
    if not spec or not isinstance(spec, str):
        raise DataError(f"empty dataset spec {spec!r}; expected KIND[:ARG][@DOMAIN]")
    domain = None
    head, at, tail = spec.rpartition("@")
    if at and tail and "/" not in tail and head:
        spec, domain = head, tail
    kind, _, arg = spec.partition(":")
    return kind, arg, domain


def load_task(spec: str, split: str = "test", *, options: DataOptions | None = None) -> Task:
    """Load the task named by ``spec`` on ``split`` (``train`` or ``test``, or a kind's own)."""
    kind, arg, domain = parse_spec(spec)
    builder = datasets.get(kind)
    task = builder(arg, split=split, domain=domain, options=options or DataOptions())
    return _apply_overrides(task, options or DataOptions())


def _read_lines(path: str, what: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} file {path} does not exist")
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{what} file {path} is empty")
    return lines


def _apply_overrides(task: Task, options: DataOptions) -> Task:
    if options.classnames_file:
        names = _read_lines(options.classnames_file, "class names")
        if len(names) != task.n_classes:
            raise DataError(
                f"class names file {options.classnames_file} has {len(names)} names but task "
                f"{task.name} has {task.n_classes} classes"
            )
        task.class_names = names
    if options.templates_file:
        task.templates = _read_lines(options.templates_file, "templates")
        task.__post_init__()
    return task


def dataset_names() -> list[str]:
    return datasets.names()
