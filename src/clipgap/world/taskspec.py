"""What a world task is: :class:`WorldTask` (classes as attribute value combinations), how tasks
are built from the attributes (:func:`single`, :func:`compound`, :func:`balanced_pairs`), and
their class-count variants (:func:`class_counts`, :func:`with_class_count`).

A class-count variant ``TASK/K`` keeps what makes its task hard (the attributes, their words,
the templates) and changes only how many classes it has: a single-attribute task keeps the
first ``K`` values of its attribute, in the world's order (``color/3``: red, green, blue); a
compound task keeps ``K`` balanced value pairs (:func:`balanced_pairs`), where ``K`` is a
multiple of both attributes' periods that leaves every value in at least two classes, so
that neither attribute alone still tells the classes apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from clipgap.errors import DataError
from clipgap.world.captions import PLURALS
from clipgap.world.config import ATTRIBUTES


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
    # a compound task's class name from its two value words (to name a class-count variant)
    phrase: Callable[[str, str], str] | None = field(default=None, compare=False, repr=False)

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
    return WorldTask(name, attributes, tuple(pairs), names, (template,), phrase)


def count_color_phrase(count: str, color: str) -> str:
    return f"{count} {color} shape" + ("" if count == "one" else "s")


LIGHT_WORDS = {"day": "daytime", "sunset": "sunset", "night": "night"}


def color_light_phrase(color: str, light: str) -> str:
    return f"{color} shape at {LIGHT_WORDS[light]}"


def count_shape_phrase(count: str, shape: str) -> str:
    """``one circle``, ``three crosses``: plurals as the pretraining captions write them."""
    return f"{count} {shape}" if count == "one" else f"{count} {PLURALS.get(shape, shape + 's')}"


def count_texture_phrase(count: str, texture: str) -> str:
    return f"{count} shape" + ("" if count == "one" else "s") + f" on a {texture} background"


def class_counts(task: WorldTask) -> list[int]:
    """The class counts ``K`` that ``TASK/K`` can take (see the module docstring)."""
    sizes = [len(ATTRIBUTES[a]) for a in task.attributes]
    if len(sizes) == 1:
        return list(range(2, sizes[0] + 1))
    na, nb = sizes
    period = math.lcm(na, nb)
    return [k for k in range(period, na * nb + 1, period) if k >= 2 * max(na, nb)]


def with_class_count(task: WorldTask, k: int) -> WorldTask:
    """``task`` with ``k`` classes (one of :func:`class_counts`), named ``TASK/K``."""
    name = f"{task.name}/{k}"
    if len(task.attributes) == 1:
        keep = slice(0, k)
        return replace(
            task, name=name, values=task.values[keep], class_names=task.class_names[keep]
        )
    a, b = task.attributes
    pairs = balanced_pairs(len(ATTRIBUTES[a]), len(ATTRIBUTES[b]), k)
    names = tuple(task.phrase(ATTRIBUTES[a][i], ATTRIBUTES[b][j]) for i, j in pairs)
    return replace(task, name=name, values=tuple(pairs), class_names=names)


def parse_class_count(task: WorldTask, text: str) -> int:
    """The ``K`` of ``world:TASK/K``; DataError (one line, naming the spec) when it cannot be."""
    spec = f"world:{task.name}/{text}"
    counts = class_counts(task)
    try:
        k = int(text)
    except ValueError:
        raise DataError(
            f"{spec}: the class count after '/' must be a whole number, got {text!r}"
        ) from None
    if k < 2:
        raise DataError(f"{spec}: a task needs at least 2 classes")
    if len(task.attributes) == 1 and k > counts[-1]:
        raise DataError(
            f"{spec}: {task.attributes[0]} has {counts[-1]} values; choose a class count in "
            f"2..{counts[-1]}"
        )
    if k not in counts:
        a, b = task.attributes
        raise DataError(
            f"{spec}: {task.name} takes {', '.join(map(str, counts))} classes (balanced {a} x {b} "
            f"pairs that keep every value in two or more classes)"
        )
    return k
