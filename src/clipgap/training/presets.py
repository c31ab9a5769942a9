"""Named training presets: :class:`TrainConfig` settings per fine-tuning method, kept as data.

``preset("paper", "lora")`` returns the authors' protocol (SGD momentum 0.9, lr 1e-6, weight
decay 1e-4, batch 128, 10 epochs) as :class:`TrainConfig` keyword arguments; ``preset("tuned",
method)`` returns per-method settings that move accuracy within a few seconds on the embedded
world. The numbers, and where each preset's numbers come from (``Preset.source``), are in
``presets.yaml`` beside this module; every entry is validated as a TrainConfig when loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import yaml

from clipgap.errors import ConfigError, UnknownNameError
from clipgap.methods import ResolvedMethod, resolve_method
from clipgap.registry import Registry
from clipgap.training.config import TrainConfig

PRESETS_FILE = "presets.yaml"


@dataclass(frozen=True)
class Preset:
    """One named preset: ``every_method`` settings, overridden per method by ``per_method``.

    A preset with ``per_method`` entries has settings only for those methods.
    """

    name: str
    source: str
    every_method: dict = field(default_factory=dict)
    per_method: dict[str, dict] = field(default_factory=dict)

    def settings(self, method: str) -> dict:
        """TrainConfig keyword arguments of this preset for ``method`` (a fresh dict)."""
        if self.per_method and method not in self.per_method:
            raise UnknownNameError(
                f"preset {self.name!r} has no settings for method {method!r}; "
                f"{self.name} methods: {', '.join(sorted(self.per_method))}"
            )
        return {**self.every_method, **self.per_method.get(method, {})}


def _preset(name: str, entry, where: str) -> Preset:
    if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
        raise ConfigError(f"{where}: preset {name!r} needs a 'source' text and settings")
    unknown = sorted(set(entry) - {"source", "every_method", "per_method"})
    if unknown:
        raise ConfigError(
            f"{where}: preset {name!r} has unknown key {unknown[0]!r}; expected source, "
            "every_method, per_method"
        )
    preset = Preset(
        name,
        " ".join(entry["source"].split()),
        dict(entry.get("every_method") or {}),
        {m: dict(s) for m, s in (entry.get("per_method") or {}).items()},
    )
    for method in preset.per_method or ["(every method)"]:
        try:
            TrainConfig(**{**preset.every_method, **preset.per_method.get(method, {})})
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"{where}: preset {name!r}, {method}: {exc}") from None
    return preset


def load_presets(text: str, *, where: str = PRESETS_FILE) -> Registry[Preset]:
    """Presets from YAML ``text`` (the format of ``presets.yaml``), each validated."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{where}: expected a mapping of preset names to presets")
    registry: Registry[Preset] = Registry("preset")
    for name, entry in data.items():
        registry.register(name)(_preset(name, entry, where))
    return registry


presets: Registry[Preset] = load_presets(
    resources.files("clipgap.training").joinpath(PRESETS_FILE).read_text("utf-8")
)
"""Every preset shipped in ``presets.yaml``, by name."""

PAPER: dict = presets.get("paper").every_method
"""The authors' protocol, the same for every method (:data:`presets` ``["paper"]``)."""

TUNED: dict[str, dict] = presets.get("tuned").per_method
"""The ``tuned`` preset's settings by method."""


def preset(name: str, method: str | ResolvedMethod) -> dict:
    """:class:`TrainConfig` keyword arguments of preset ``name`` for ``method``: a
    :class:`~clipgap.methods.ResolvedMethod` (a run's, looked up already), or a name, looked up
    here (UnknownNameError listing the valid ones)."""
    if not isinstance(method, ResolvedMethod):
        method = resolve_method(method)
    return presets.get(name).settings(method.name)
