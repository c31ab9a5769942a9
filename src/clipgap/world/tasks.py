"""World tasks as clipgap datasets: ``world:<task>`` and ``world:<task>@<style>``.

Each task classifies one scene attribute; the other attributes vary at random. Splits ``train``
and ``test`` are class-balanced and drawn from their own seed (per world seed, task, style and
split), so the same spec always yields the same pixels. Rendered splits are memoised in-process.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections import OrderedDict
from collections.abc import Callable
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
    "STUDY_TASKS",
    "STUDY_TEST_IMAGES",
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
    """Classify scenes by the values of ``attributes``.

    Class ``i`` is every scene whose attribute ``attributes[j]`` has value index ``values[i][j]``
    (an index into ``ATTRIBUTES[attributes[j]]``); it is named ``class_names[i]`` in the prompts.
    A task with one attribute has one class per value; a compound task's classes are
    combinations of two attributes' values (``red circle``), possibly a balanced subset of them.
    """

    name: str
    attributes: tuple[str, ...]
    values: tuple[tuple[int, ...], ...]
    class_names: tuple[str, ...]
    templates: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.class_names) or len(set(self.values)) != len(self.values):
            raise ValueError(f"world task {self.name}: one distinct value tuple per class name")
        for combo in self.values:
            if len(combo) != len(self.attributes) or any(
                not 0 <= v < len(ATTRIBUTES[a]) for a, v in zip(self.attributes, combo, strict=True)
            ):
                raise ValueError(
                    f"world task {self.name}: {combo} is not a value of each attribute"
                )

    @property
    def attribute(self) -> str:
        """The attribute names joined by ``+`` (``color+shape``)."""
        return "+".join(self.attributes)

    def fixed(self, labels: np.ndarray) -> dict[str, np.ndarray]:
        """The attribute value indices that scenes of class ``labels`` must have."""
        table = np.asarray(self.values, dtype=np.int64)[labels]
        return {a: table[:, j] for j, a in enumerate(self.attributes)}


def single(
    name: str, attribute: str, template: str, names: tuple[str, ...] | None = None
) -> WorldTask:
    """One class per value of ``attribute``, named by its word (or by ``names``)."""
    words = ATTRIBUTES[attribute]
    return WorldTask(
        name, (attribute,), tuple((i,) for i in range(len(words))), names or words, (template,)
    )


def balanced_pairs(na: int, nb: int, n: int) -> list[tuple[int, int]]:
    """``n`` distinct value pairs of two attributes with ``na`` and ``nb`` values.

    Pair ``j`` is ``(j % na, (j + j // L) % nb)`` with ``L = lcm(na, nb)``: each block of ``L``
    pairs uses every value of either attribute equally often, and each later block shifts the
    second value by one, so for ``n`` a multiple of ``L`` every value of either attribute appears
    in ``n / na`` (resp. ``n / nb``) classes.
    """
    period = math.lcm(na, nb)
    pairs = [(j % na, (j + j // period) % nb) for j in range(n)]
    if len(set(pairs)) != n:
        raise ValueError(f"{n} pairs of {na} x {nb} values are not distinct")
    return pairs


def compound(
    name: str,
    attributes: tuple[str, str],
    phrase: Callable[[str, str], str],
    template: str,
    pairs: list[tuple[int, int]] | None = None,
) -> WorldTask:
    """Classes = value pairs of two attributes (every pair unless ``pairs`` picks a subset),
    named ``phrase(word_a, word_b)``."""
    a, b = attributes
    na, nb = len(ATTRIBUTES[a]), len(ATTRIBUTES[b])
    pairs = pairs if pairs is not None else [(i, j) for i in range(na) for j in range(nb)]
    names = tuple(phrase(ATTRIBUTES[a][i], ATTRIBUTES[b][j]) for i, j in pairs)
    return WorldTask(name, attributes, tuple(pairs), names, (template,))


def _count_color(count: str, color: str) -> str:
    return f"{count} {color} shape" + ("" if count == "one" else "s")


LIGHT_WORDS = {"day": "daytime", "sunset": "sunset", "night": "night"}


def _color_light(color: str, light: str) -> str:
    return f"{color} shape at {LIGHT_WORDS[light]}"


world_tasks: Registry[WorldTask] = Registry("world task")

# From well aligned with the pretraining captions to never described by them. Compound tasks
# need both attributes: no single attribute tells their classes apart.
_TASKS = (
    single("shape", "shape", "a photo of a {c}."),
    single("color", "color", "a photo of a {c} shape."),
    single("count", "count", "a photo of {c}.", ("one shape", "two shapes", "three shapes")),
    single("size", "size", "a photo of a {c} shape."),
    single("texture", "texture", "a photo of a shape on a {c} background."),
    single("position", "position", "a photo of a shape in the {c} half."),
    single("light", "light", "a photo of a shape at {c}.", tuple(LIGHT_WORDS.values())),
    compound(
        "color_shape",
        ("color", "shape"),
        "{} {}".format,
        "a photo of a {c}.",
        balanced_pairs(6, 6, 12),
    ),
    compound("count_color", ("count", "color"), _count_color, "a photo of {c}."),
    compound("size_color", ("size", "color"), "{} {} shape".format, "a photo of a {c}."),
    compound(
        "color_texture",
        ("color", "texture"),
        "{} shape on a {} background".format,
        "a photo of a {c}.",
        balanced_pairs(6, 4, 12),
    ),
    compound(
        "color_light",
        ("color", "light"),
        _color_light,
        "a photo of a {c}.",
        balanced_pairs(6, 3, 12),
    ),
)
for _task in _TASKS:
    world_tasks.register(_task.name)(_task)

WORLD_TASKS: tuple[str, ...] = tuple(t.name for t in _TASKS)
# The default study's tasks: zero-shot top-1 from near chance to 0.99 with the middle filled in,
# few enough that `make study` stays within its time budget (count_color and color_texture,
# both easy like color and count, are left to studies that ask for them). Every run scores every
# other task as a control, so evaluation grows with the square of the number of tasks: the
# default study also caps each test split at STUDY_TEST_IMAGES.
STUDY_TEST_IMAGES = 250
# Interpolation weights the default study scores every run at (WiSE-FT frontier): the two
# ends cost nothing (alpha 0 is the zero-shot model, 1 the fine-tuned one), 0.5 one more
# evaluation of the tower-training runs.
STUDY_ALPHAS: tuple[float, ...] = (0.0, 0.5, 1.0)
STUDY_TASKS: tuple[str, ...] = tuple(
    t for t in WORLD_TASKS if t not in ("count_color", "color_texture")
)


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
    scenes = sample_scenes(rng, n, world.image_size, fixed=spec.fixed(labels))
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
        meta={
            "attribute": spec.attribute,
            "attributes": list(spec.attributes),
            "style": style,
            "world_seed": world.seed,
        },
    )


@datasets.register("world")
def world_dataset(arg: str, *, split: str, domain: str | None, options: DataOptions) -> Task:
    """``world:TASK[@STYLE]``: a task of the embedded procedural world (never downloads)."""
    if not arg:
        raise DataError(
            f"world dataset needs a task: world:TASK[@STYLE]; tasks: {', '.join(WORLD_TASKS)}"
        )
    return make_task(arg, domain or MAIN_STYLE, split)
