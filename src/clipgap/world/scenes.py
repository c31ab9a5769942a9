"""Scene sampling: attribute indices plus the continuous layout that renders them.

A scene is ``count`` identical objects (one shape, colour and size) lined up in one half of the
image, over a textured background, under one light. Everything is drawn from a numpy
``Generator`` so a seed fixes the scenes exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipgap.errors import ConfigError
from clipgap.world.config import ATTRIBUTES

MAX_OBJECTS = 3
# Object radius (shapes reach about this far from their centre) as a fraction of the image side,
# per size value (small, large), scaled down for crowded scenes so objects never touch.
RADIUS = (0.16, 0.23)
COUNT_SCALE = (1.0, 0.85, 0.58)


@dataclass
class Scenes:
    """``n`` scenes. ``attrs[a]`` is an int array (n,) of indices into ``ATTRIBUTES[a]``.

    Layout, in pixels of a ``size`` x ``size`` image: ``centers`` (n, 3, 2) object centres (x, y)
    (slots beyond ``count`` are unused), ``radius`` (n,), ``angle`` (n,) small rotations in
    radians, ``tint`` (n, 3) colour jitter, ``background`` (n, 3) base colour in [0, 1],
    ``period`` (n,) texture period in pixels, ``phase`` (n, 2) texture offsets, ``theta`` (n,)
    stripe direction.
    """

    size: int
    attrs: dict[str, np.ndarray]
    centers: np.ndarray
    radius: np.ndarray
    angle: np.ndarray
    tint: np.ndarray
    background: np.ndarray
    period: np.ndarray
    phase: np.ndarray
    theta: np.ndarray

    def __len__(self) -> int:
        return len(self.radius)

    def take(self, idx: np.ndarray) -> Scenes:
        """The scenes at integer positions ``idx``."""
        fields = {k: v[idx] for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        return Scenes(size=self.size, attrs={k: v[idx] for k, v in self.attrs.items()}, **fields)


def _layout(rng: np.random.Generator, count: np.ndarray, position: np.ndarray, size: int):
    """Object centres: ``count`` evenly spaced slots along the chosen half, with jitter."""
    n = len(count)
    k = (count + 1)[:, None]  # objects per scene
    slot = np.arange(MAX_OBJECTS)[None, :]
    along = (slot + 0.5) / k * size + rng.uniform(-0.015, 0.015, (n, MAX_OBJECTS)) * size
    across = np.where(position % 2 == 0, 0.25, 0.75)[:, None] * size
    across = across + rng.uniform(-0.05, 0.05, (n, MAX_OBJECTS)) * size
    vertical_half = position >= 2  # top/bottom: objects in a row; left/right: in a column
    x = np.where(vertical_half[:, None], along, across)
    y = np.where(vertical_half[:, None], across, along)
    return np.stack([x, y], axis=-1)


def sample_scenes(
    rng: np.random.Generator, n: int, size: int, fixed: dict[str, np.ndarray] | None = None
) -> Scenes:
    """Draw ``n`` scenes; ``fixed[a]`` (int array of length n) pins attribute ``a``."""
    fixed = fixed or {}
    attrs = {}
    for name, values in ATTRIBUTES.items():
        if name in fixed:
            v = np.asarray(fixed[name], dtype=np.int64)
            if v.shape != (n,) or (v < 0).any() or (v >= len(values)).any():
                raise ConfigError(
                    f"fixed {name}: expected {n} indices in 0..{len(values) - 1}, got shape "
                    f"{v.shape}"
                )
            attrs[name] = v
        else:
            attrs[name] = rng.integers(0, len(values), n)
    f32 = np.float32
    scale = np.asarray(COUNT_SCALE)[attrs["count"]] * rng.uniform(0.95, 1.05, n)
    radius = np.asarray(RADIUS)[attrs["size"]] * size * scale
    value = rng.uniform(0.35, 0.8, (n, 1))
    saturation = rng.uniform(0.0, 0.3, (n, 1))
    background = value * (1 - saturation) + saturation * rng.uniform(0, 1, (n, 3))
    return Scenes(
        size=size,
        attrs=attrs,
        centers=_layout(rng, attrs["count"], attrs["position"], size).astype(f32),
        radius=radius.astype(f32),
        angle=rng.uniform(-0.15, 0.15, n).astype(f32),
        tint=rng.uniform(-0.06, 0.06, (n, 3)).astype(f32),
        background=background.astype(f32),
        period=(rng.uniform(0.17, 0.25, n) * size).astype(f32),
        phase=rng.uniform(0, 1, (n, 2)).astype(f32),
        theta=rng.uniform(0, np.pi, n).astype(f32),
    )


def balanced_labels(rng: np.random.Generator, n: int, n_classes: int) -> np.ndarray:
    """``n`` labels whose class counts differ by at most one, in random order."""
    return rng.permutation(np.arange(n) % n_classes)
