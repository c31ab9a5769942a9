"""Named training presets: :class:`TrainConfig` settings per fine-tuning method, kept as data.

``preset("paper", "lora", model="ViT-B-32")`` returns the authors' protocol (SGD momentum 0.9,
lr 1e-6, weight decay 1e-4, batch 128, 10 epochs) as :class:`TrainConfig` keyword arguments.
A preset may hold settings per model family (``per_family``; the family of a model spec is
:func:`clipgap.backbones.model_family`): ``tuned`` has one set for the world CLIPs (fast runs on
the embedded world) and one for real CLIP ViTs (from the literature). A preset applied to a
family it has no settings for is refused, naming the presets that have. A family may also give
each method's search space (``space``, the default of a study's ``search:``). The numbers, and
where each preset's numbers come from (``Preset.source``), are in ``presets.yaml`` beside this
module; every entry is validated as a TrainConfig when loaded.
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

    A preset with ``per_method`` entries has settings only for those methods. A preset with
    ``per_family`` entries (each a :class:`Preset` of its own) has settings only for those model
    families; ``space`` is the search space per method (setting -> range or choices, as data).
    """

    name: str
    source: str
    every_method: dict = field(default_factory=dict)
    per_method: dict[str, dict] = field(default_factory=dict)
    per_family: dict[str, Preset] = field(default_factory=dict)
    space: dict[str, dict] = field(default_factory=dict)

    def for_family(self, family: str) -> Preset | None:
        """The preset that applies to ``family``: itself without ``per_family``, else that
        family's entry (None when it has none)."""
        return self.per_family.get(family) if self.per_family else self

    def settings(self, method: str) -> dict:
        """TrainConfig keyword arguments of this preset for ``method`` (a fresh dict)."""
        if self.per_method and method not in self.per_method:
            raise UnknownNameError(
                f"preset {self.name!r} has no settings for method {method!r}; "
                f"{self.name} methods: {', '.join(sorted(self.per_method))}"
            )
        return {**self.every_method, **self.per_method.get(method, {})}


KEYS = ("source", "every_method", "per_method", "per_family", "space")


def _preset(name: str, entry, where: str) -> Preset:
    if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
        raise ConfigError(f"{where}: preset {name!r} needs a 'source' text and settings")
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: preset {name!r} has unknown key {unknown[0]!r}; expected {', '.join(KEYS)}"
        )
    families = entry.get("per_family") or {}
    if families and (entry.get("every_method") or entry.get("per_method")):
        raise ConfigError(
            f"{where}: preset {name!r} has per_family settings; put every_method / per_method "
            "inside each family"
        )
    preset = Preset(
        name,
        " ".join(entry["source"].split()),
        dict(entry.get("every_method") or {}),
        {m: dict(s) for m, s in (entry.get("per_method") or {}).items()},
        {f: _family(name, f, e, where) for f, e in families.items()},
        {m: dict(s) for m, s in (entry.get("space") or {}).items()},
    )
    if preset.per_family:
        return preset
    for method in preset.per_method or ["(every method)"]:
        try:
            TrainConfig(**{**preset.every_method, **preset.per_method.get(method, {})})
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"{where}: preset {name!r}, {method}: {exc}") from None
    return preset


def _family(name: str, family: str, entry, where: str) -> Preset:
    from clipgap.backbones import FAMILIES

    if family not in FAMILIES:
        raise ConfigError(
            f"{where}: preset {name!r} names unknown model family {family!r}; expected one of "
            f"{', '.join(FAMILIES)}"
        )
    if isinstance(entry, dict) and "per_family" in entry:
        raise ConfigError(f"{where}: preset {name!r}, family {family}: per_family cannot nest")
    return _preset(f"{name}[{family}]", entry, where)


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
"""The authors' protocol, the same for every method and model (:data:`presets` ``["paper"]``)."""

TUNED: dict[str, dict] = presets.get("tuned").per_family["world"].per_method
"""The ``tuned`` preset's settings by method for the world CLIPs."""


def family_preset(name: str, model: str) -> Preset:
    """Preset ``name`` as it applies to ``model``'s family; ConfigError naming the presets that
    have settings for that family when it has none."""
    from clipgap.backbones import model_family

    family = model_family(model)
    found = presets.get(name).for_family(family)
    if found is None:
        having = [n for n in presets.names() if presets.get(n).for_family(family) is not None]
        raise ConfigError(
            f"preset {name!r} has no settings for model family {family!r} (model {model}); "
            f"presets with settings for it: {', '.join(having) or 'none'}"
        )
    return found


def preset(name: str, method: str | ResolvedMethod, *, model: str) -> dict:
    """:class:`TrainConfig` keyword arguments of preset ``name`` for ``method`` on ``model``:
    ``method`` is a :class:`~clipgap.methods.ResolvedMethod` (a run's, looked up already), or a
    name, looked up here (UnknownNameError listing the valid ones)."""
    if not isinstance(method, ResolvedMethod):
        method = resolve_method(method)
    found = family_preset(name, model)
    try:
        return found.settings(method.name)
    except UnknownNameError as exc:  # name the preset as the user wrote it
        raise UnknownNameError(str(exc).replace(repr(found.name), repr(name), 1)) from None


def search_space(name: str, method: str, *, model: str) -> dict | None:
    """The search space (YAML data) preset ``name`` gives ``method`` on ``model``, or None."""
    return family_preset(name, model).space.get(method)
