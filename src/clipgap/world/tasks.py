"""World tasks as clipgap datasets: ``world:<task>`` and ``world:<task>@<style>``.

Each task classifies one scene attribute; the other attributes vary at random. Splits ``train``
and ``test`` are class-balanced and drawn from their own seed (per world seed, task, style and
split), so the same spec always yields the same pixels. Rendered splits are memoised in-process.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from clipgap.data import DataOptions, Task, datasets, digest
from clipgap.data.base import ImageArrays
from clipgap.errors import DataError, UnknownNameError, suggest
from clipgap.registry import Registry
from clipgap.world.config import ATTRIBUTES, MAIN_STYLE, STYLES, WorldConfig
from clipgap.world.render import render
from clipgap.world.scenes import balanced_labels, sample_scenes

__all__ = [
    "MAIN_STYLE",
    "STYLES",
    "WORLD_TASKS",
    "WorldTask",
    "make_task",
    "render_split",
    "shift_styles",
    "world_tasks",
]

SPLITS = ("train", "test")
DEFAULT_WORLD = WorldConfig()


@dataclass(frozen=True)
class WorldTask:
    """Classify ``attribute``; ``class_names[i]`` names value ``ATTRIBUTES[attribute][i]``."""

    name: str
    attribute: str
    class_names: tuple[str, ...]
    templates: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.class_names) != len(ATTRIBUTES[self.attribute]):
            raise ValueError(f"world task {self.name}: one class name per {self.attribute} value")


world_tasks: Registry[WorldTask] = Registry("world task")


# From well aligned with the pretraining captions to never described by them.
_TASKS = (
    WorldTask("shape", "shape", ATTRIBUTES["shape"], ("a photo of a {c}.",)),
    WorldTask("color", "color", ATTRIBUTES["color"], ("a photo of a {c} shape.",)),
    WorldTask("count", "count", ("one shape", "two shapes", "three shapes"), ("a photo of {c}.",)),
    WorldTask(
        "texture", "texture", ATTRIBUTES["texture"], ("a photo of a shape on a {c} background.",)
    ),
    WorldTask(
        "position", "position", ATTRIBUTES["position"], ("a photo of a shape in the {c} half.",)
    ),
    WorldTask("light", "light", ("daytime", "sunset", "night"), ("a photo of a shape at {c}.",)),
)
for _task in _TASKS:
    world_tasks.register(_task.name)(_task)

WORLD_TASKS: tuple[str, ...] = tuple(t.name for t in _TASKS)


def shift_styles(task: str) -> list[str]:
    """The styles a study evaluates domain generalisation on (every style but the main one)."""
    world_tasks.get(task)
    return [s for s in STYLES if s != MAIN_STYLE]


def check_style(style: str) -> str:
    if style not in STYLES:
        raise UnknownNameError(
            f"unknown world style {style!r}{suggest(style, STYLES)}; choose from: "
            f"{', '.join(STYLES)}"
        )
    return style


def _stable(name: str) -> int:
    return zlib.crc32(name.encode())


_MEMO: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_MEMO_SIZE = 48


def render_split(
    task: str, style: str, split: str, world: WorldConfig = DEFAULT_WORLD
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, S, S, 3) uint8 and labels (N,) of one task split in one style."""
    spec = world_tasks.get(task)
    check_style(style)
    if split not in SPLITS:
        raise DataError(f"world task {task}: unknown split {split!r}; choose from: train, test")
    key = (task, style, split, digest(world.as_dict()))
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    n = world.train_size if split == "train" else world.test_size
    rng = np.random.default_rng([world.seed, _stable(task), _stable(style), _stable(split)])
    labels = balanced_labels(rng, n, len(spec.class_names))
    scenes = sample_scenes(rng, n, world.image_size, fixed={spec.attribute: labels})
    pixels = render(scenes, style, rng, world)
    pixels.setflags(write=False)
    labels.setflags(write=False)
    _MEMO[key] = (pixels, labels)
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return pixels, labels


def make_task(
    task: str, style: str = MAIN_STYLE, split: str = "test", world: WorldConfig = DEFAULT_WORLD
) -> Task:
    """The clipgap :class:`Task` for one world task, style and split."""
    spec = world_tasks.get(task)
    pixels, labels = render_split(task, style, split, world)
    return Task(
        name=f"world:{task}" + ("" if style == MAIN_STYLE else f"@{style}"),
        split=split,
        images=ImageArrays(pixels),
        labels=labels,
        class_names=list(spec.class_names),
        templates=list(spec.templates),
        # the pixels themselves key caches: a renderer change can never reuse stale embeddings
        fingerprint=digest(
            "world",
            task,
            style,
            split,
            hashlib.sha256(pixels.tobytes()).hexdigest(),
            hashlib.sha256(labels.tobytes()).hexdigest(),
        ),  # fmt: skip
        domain=style,
        meta={"attribute": spec.attribute, "style": style, "world_seed": world.seed},
    )


@datasets.register("world")
def world_dataset(arg: str, *, split: str, domain: str | None, options: DataOptions) -> Task:
    """``world:TASK[@STYLE]``: a task of the embedded procedural world (never downloads)."""
    if not arg:
        raise DataError(
            f"world dataset needs a task: world:TASK[@STYLE]; tasks: {', '.join(WORLD_TASKS)}"
        )
    return make_task(arg, domain or MAIN_STYLE, split)
