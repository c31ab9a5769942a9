"""Vectorised numpy rendering of scenes in one of several styles (the world's domains).

Shapes are gauge functions: ``q(x, y)`` is homogeneous of degree one, so a shape of radius ``r``
is ``q <= r``, its outline is ``|q - r| < w`` and edges are anti-aliased by ``clip(r - q + .5)``.
Styles: ``photo`` (shaded fill, textured background, noise), ``cartoon`` (flat fill, thick black
border), ``sketch`` (coloured outlines on paper) and ``mosaic`` (a photo pixelated into tiles).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from clipgap.registry import Registry
from clipgap.world.config import ATTRIBUTES, WorldConfig
from clipgap.world.scenes import MAX_OBJECTS, Scenes

COLORS = {
    "red": (0.86, 0.14, 0.12),
    "green": (0.15, 0.68, 0.2),
    "blue": (0.16, 0.3, 0.9),
    "yellow": (0.95, 0.86, 0.15),
    "purple": (0.58, 0.2, 0.75),
    "orange": (0.98, 0.55, 0.1),
}
LIGHTS = {"day": (1.0, 1.0, 1.0), "sunset": (1.0, 0.72, 0.5), "night": (0.42, 0.48, 0.75)}


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    phi = np.arctan2(v, u) + np.pi / 2  # one point straight up
    wave = np.abs((phi * 5 / (2 * np.pi)) % 1.0 * 2 - 1)  # 1 at the points, 0 between
    return np.hypot(u, v) / (0.45 + 0.55 * wave)


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    return np.maximum(np.maximum(v, c * u - s * v), -c * u - s * v) / 0.55


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av, w = np.abs(u), np.abs(v), 0.36
    return np.minimum(np.maximum(au / w, av), np.maximum(au, av / w))


GAUGES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": lambda u, v: np.hypot(u, v),
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) / 0.8,
    "triangle": _triangle,
    "diamond": lambda u, v: np.abs(u) + np.abs(v),
    "cross": _cross,
    "star": _star,
}
assert tuple(GAUGES) == ATTRIBUTES["shape"]


def object_field(scenes: Scenes) -> np.ndarray:
    """Gauge field ``q`` (n, S, S): the minimum over a scene's objects (all share one radius)."""
    n, s = len(scenes), scenes.size
    grid = np.arange(s, dtype=np.float32) + 0.5
    q = np.full((n, s, s), np.inf, dtype=np.float32)
    cos, sin = np.cos(scenes.angle), np.sin(scenes.angle)
    for j in range(MAX_OBJECTS):
        for k, gauge in enumerate(GAUGES.values()):
            idx = np.flatnonzero((scenes.attrs["shape"] == k) & (scenes.attrs["count"] >= j))
            if not len(idx):
                continue
            dx = grid[None, None, :] - scenes.centers[idx, j, 0, None, None]
            dy = grid[None, :, None] - scenes.centers[idx, j, 1, None, None]
            c, si = cos[idx, None, None], sin[idx, None, None]
            q[idx] = np.minimum(q[idx], gauge(dx * c + dy * si, dy * c - dx * si))
    return q


def coverage(scenes: Scenes, q: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage (n, S, S) in [0, 1] of a scene's objects, from its gauge field."""
    return np.clip(scenes.radius[:, None, None] - q + 0.5, 0, 1)


def _stripes(x, y, period, phase, theta):
    t = np.cos(theta) * x + np.sin(theta) * y
    return (t / period + phase[0]) % 1.0 < 0.5


def _dots(x, y, period, phase, theta):
    fx = (x / period + phase[0]) % 1.0 - 0.5
    fy = (y / period + phase[1]) % 1.0 - 0.5
    return fx**2 + fy**2 < 0.3**2


def _checks(x, y, period, phase, theta):
    return (np.floor(x / period + phase[0]) + np.floor(y / period + phase[1])) % 2 == 0


TEXTURES = {
    "plain": lambda x, y, period, phase, theta: np.zeros(np.broadcast(x, period).shape, bool),
    "striped": _stripes,
    "dotted": _dots,
    "checkered": _checks,
}
assert tuple(TEXTURES) == ATTRIBUTES["texture"]


def texture_pattern(scenes: Scenes) -> np.ndarray:
    """Binary background pattern (n, S, S) of each scene's texture."""
    s = scenes.size
    y, x = np.mgrid[0:s, 0:s].astype(np.float32)[:, None] + 0.5
    out = np.zeros((len(scenes), s, s), dtype=bool)
    for k, fn in enumerate(TEXTURES.values()):
        idx = np.flatnonzero(scenes.attrs["texture"] == k)
        if len(idx):
            period = scenes.period[idx, None, None]
            phase = scenes.phase[idx].T[:, :, None, None]
            out[idx] = fn(x, y, period, phase, scenes.theta[idx, None, None])
    return out


def object_colors(scenes: Scenes, *, jitter: bool = True) -> np.ndarray:
    """Base RGB colour (n, 3) of each scene's objects, in [0, 1]."""
    base = np.asarray(list(COLORS.values()), dtype=np.float32)[scenes.attrs["color"]]
    return np.clip(base + scenes.tint, 0, 1) if jitter else base


def _composite(img: np.ndarray, cover: np.ndarray, color: np.ndarray) -> np.ndarray:
    """Paint ``color`` (n, S, S, 3) or (n, 1, 1, 3) over ``img`` with coverage (n, S, S)."""
    a = cover[..., None]
    return img * (1 - a) + a * color


def render(scenes: Scenes, style: str, rng: np.random.Generator, cfg: WorldConfig) -> np.ndarray:
    """RGB uint8 images (n, S, S, 3) of ``scenes`` drawn in ``style``, lit by their light."""
    img = styles.get(style)(scenes, rng, cfg)
    light = np.asarray(list(LIGHTS.values()), dtype=np.float32)[scenes.attrs["light"]]
    img = img * light[:, None, None, :]
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


Style = Callable[[Scenes, np.random.Generator, WorldConfig], np.ndarray]
styles: Registry[Style] = Registry("style")


@functools.lru_cache(maxsize=4)
def _noise_bank(size: int, channels: int) -> np.ndarray:
    return np.random.default_rng(1234).standard_normal((512, size, size, channels), np.float32)


def _noise(rng: np.random.Generator, n: int, size: int, channels: int) -> np.ndarray:
    """Unit Gaussian noise (n, size, size, channels): a seeded bank, drawn and sign-flipped."""
    pick = rng.integers(0, 512, n)
    sign = rng.choice(np.array([-1.0, 1.0], np.float32), n)
    return _noise_bank(size, channels)[pick] * sign[:, None, None, None]


def _background(scenes: Scenes, contrast: float, lift: float) -> np.ndarray:
    pattern = texture_pattern(scenes).astype(np.float32)
    base = lift + (1 - lift) * scenes.background
    return base[:, None, None, :] * (1 - contrast * pattern[..., None])


@styles.register("photo")
def _photo(scenes: Scenes, rng: np.random.Generator, cfg: WorldConfig) -> np.ndarray:
    q = object_field(scenes)
    r = scenes.radius[:, None, None]
    shade = 0.72 + 0.4 * np.clip(1 - q / r, 0, 1)
    color = object_colors(scenes)[:, None, None, :] * shade[..., None]
    img = _composite(_background(scenes, 0.4, 0.0), coverage(scenes, q), color)
    s = scenes.size
    ramp = np.arange(s, dtype=np.float32) / s
    img *= (1.08 - 0.16 * (ramp[:, None] + ramp[None, :]) / 2)[None, :, :, None]
    return img + cfg.noise * _noise(rng, len(scenes), s, 3)


@styles.register("cartoon")
def _cartoon(scenes: Scenes, rng: np.random.Generator, cfg: WorldConfig) -> np.ndarray:
    q = object_field(scenes)
    r = scenes.radius[:, None, None]
    fill = coverage(scenes, q)
    border = np.clip(q - (r - 1.6) + 0.5, 0, 1) * fill
    color = object_colors(scenes, jitter=False)[:, None, None, :]
    img = _composite(_background(scenes, 0.3, 0.55), fill, color)
    return _composite(img, border, np.zeros(3, np.float32))


@styles.register("sketch")
def _sketch(scenes: Scenes, rng: np.random.Generator, cfg: WorldConfig) -> np.ndarray:
    q = object_field(scenes)
    n, s = len(scenes), scenes.size
    paper = 0.93 + 0.015 * _noise(rng, n, s, 1)
    p = texture_pattern(scenes)
    edges = (p != np.roll(p, 1, axis=1)) | (p != np.roll(p, 1, axis=2))
    img = paper * (1 - 0.45 * edges[..., None])
    outline = np.clip(1.1 - np.abs(q - scenes.radius[:, None, None]), 0, 1)
    return _composite(img, outline, 0.8 * object_colors(scenes)[:, None, None, :])


@styles.register("mosaic")
def _mosaic(scenes: Scenes, rng: np.random.Generator, cfg: WorldConfig) -> np.ndarray:
    img = _photo(scenes, rng, cfg)
    n, s, c = len(scenes), scenes.size, cfg.mosaic_cell
    t = -(-s // c)  # tiles per side
    pad = t * c - s
    padded = np.pad(img, ((0, 0), (0, pad), (0, pad), (0, 0)), mode="edge")
    tiles = padded.reshape(n, t, c, t, c, 3).mean(axis=(2, 4))
    tiles = np.round(np.clip(tiles, 0, 1) * 5) / 5  # a small palette of glass colours
    img = np.repeat(np.repeat(tiles, c, axis=1), c, axis=2)[:, :s, :s]
    grout = (np.arange(s) % c == c - 1).astype(np.float32)
    grout = np.maximum(grout[None, :, None], grout[None, None, :])
    return img * (1 - 0.3 * grout[..., None])
