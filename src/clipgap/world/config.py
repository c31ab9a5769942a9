"""The world's vocabulary (attributes, styles) and its typed, validated configuration.

Every scene holds 1-3 identical objects. Each attribute below is one integer per scene, an index
into its tuple of values. ``light`` is the hidden attribute: captions never mention it, so a
CLIP pretrained on captions learns nothing about its words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from clipgap.errors import ConfigError

# Bump whenever scene sampling or rendering changes the pixels: it keys task fingerprints and
# pretrained checkpoints, so stale caches are never reused.
GENERATOR_VERSION = 2

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle", "diamond", "cross", "star"),
    "color": ("red", "green", "blue", "yellow", "purple", "orange"),
    "size": ("small", "large"),
    "count": ("one", "two", "three"),
    "position": ("left", "right", "top", "bottom"),
    "texture": ("plain", "striped", "dotted", "checkered"),
    "light": ("day", "sunset", "night"),
}
HIDDEN_ATTRIBUTE = "light"
MENTIONABLE = tuple(a for a in ATTRIBUTES if a != HIDDEN_ATTRIBUTE)

STYLES: tuple[str, ...] = ("photo", "cartoon", "sketch", "mosaic")
MAIN_STYLE = "photo"


def _default_mention_rates() -> dict[str, float]:
    return {
        "shape": 1.0,
        "color": 0.5,
        "size": 0.4,
        "count": 0.4,
        "texture": 0.25,
        "position": 0.03,
    }


def _default_style_mix() -> dict[str, float]:
    return {"photo": 0.9, "cartoon": 0.1}


@dataclass(frozen=True)
class WorldConfig:
    """What the world looks like and how pretraining captions describe it.

    ``mention_rates[a]`` is the probability in [0, 1] that a caption names attribute ``a``
    (every attribute but the hidden ``light``; a missing key means 0). ``style_mix`` gives the
    relative frequency of each style in the pretraining images (styles left out never appear).
    ``train_size``/``test_size`` are the images per task split.
    """

    seed: int = 0
    image_size: int = 32
    mention_rates: dict[str, float] = field(default_factory=_default_mention_rates)
    style_mix: dict[str, float] = field(default_factory=_default_style_mix)
    train_size: int = 1000
    test_size: int = 500
    noise: float = 0.05
    mosaic_cell: int = 4

    def __post_init__(self) -> None:
        if not 16 <= self.image_size <= 256:
            raise ConfigError(f"world image_size={self.image_size}: expected 16..256 pixels")
        for key, rate in self.mention_rates.items():
            if key == HIDDEN_ATTRIBUTE:
                raise ConfigError(
                    f"world mention_rates.{key}: {key!r} is the hidden attribute and is never "
                    f"mentioned; choose from: {', '.join(MENTIONABLE)}"
                )
            if key not in MENTIONABLE:
                raise ConfigError(
                    f"world mention_rates.{key}: unknown attribute; choose from: "
                    f"{', '.join(MENTIONABLE)}"
                )
            if not 0.0 <= float(rate) <= 1.0:
                raise ConfigError(f"world mention_rates.{key}={rate}: expected a value in [0, 1]")
        for key, weight in self.style_mix.items():
            if key not in STYLES:
                raise ConfigError(
                    f"world style_mix.{key}: unknown style; choose from: {', '.join(STYLES)}"
                )
            if float(weight) < 0:
                raise ConfigError(f"world style_mix.{key}={weight}: expected a weight >= 0")
        if sum(self.style_mix.values()) <= 0:
            raise ConfigError("world style_mix: weights sum to 0; give some style a weight > 0")
        for key in ("train_size", "test_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"world {key}={getattr(self, key)}: expected >= 1")
        if not 0.0 <= self.noise <= 0.5:
            raise ConfigError(f"world noise={self.noise}: expected a std in [0, 0.5]")
        if not 2 <= self.mosaic_cell <= self.image_size // 4:
            raise ConfigError(
                f"world mosaic_cell={self.mosaic_cell}: expected 2..{self.image_size // 4} pixels"
            )

    def as_dict(self) -> dict:
        """JSON-able form (keys task fingerprints and checkpoints)."""
        return {"generator_version": GENERATOR_VERSION, **asdict(self)}


@dataclass(frozen=True)
class PretrainConfig:
    """Contrastive pretraining of a world CLIP (AdamW, linear warmup then cosine decay).

    ``threads``: torch threads while pretraining (default 1, see :mod:`clipgap.world.threads`).
    It is part of the config because it changes the last bits of the weights: a fixed count keeps
    them identical from run to run whatever else the machine is doing, and a command's
    ``--threads`` never changes it (a variant such as ``world:pretrain.threads=2`` does). Torch's
    previous setting is restored afterwards.
    """

    steps: int = 400
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 20
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"pretrain steps={self.steps}: expected >= 1")
        if self.batch_size < 2:
            raise ConfigError(f"pretrain batch_size={self.batch_size}: contrastive needs >= 2")
        if not 0 < self.lr < 1:
            raise ConfigError(f"pretrain lr={self.lr}: expected 0 < lr < 1")
        if self.weight_decay < 0:
            raise ConfigError(f"pretrain weight_decay={self.weight_decay}: expected >= 0")
        if not 0 <= self.warmup_steps < self.steps:
            raise ConfigError(
                f"pretrain warmup_steps={self.warmup_steps}: expected 0..{self.steps - 1}"
            )
        if self.threads < 1:
            raise ConfigError(f"pretrain threads={self.threads}: expected >= 1")
