"""Hyperparameter search with an equal budget: the typed ``search:`` study key and its trials.

Every method gets the same number of trials (``trials``), each drawn reproducibly from the
method's own search space (DomainBed's protocol; science.md, "Fair comparison")::

    search:
      trials: 3          # the same number of draws for every method
      seed: 0
      space:             # optional; default = the method's space in the preset file
        lora: {lr: [1.0e-4, 1.0e-1, log], rank: [2, 4, 8]}

A space maps setting names to a **range** ``[lo, hi, scale]`` (scale ``log``: log-uniform,
``linear``: uniform; an integer setting draws an integer) or to a list of **choices** drawn
uniformly. A setting is a searchable :class:`~clipgap.training.TrainConfig` key
(:data:`SEARCHABLE_TRAIN`) or an option of the method (``rank`` for LoRA).

Trial ``i`` of method ``m`` is the ``i``-th draw of a numpy Generator seeded with
``[seed, crc32(m)]`` (the same in every process: never Python's ``hash()``); drawing K + 1
trials gives the K of drawing K, then one more. Settings are drawn in sorted key order and
floats are rounded to 4 significant digits, so a trial reads (and hashes) the same everywhere.
The trial is chosen per task x method x seed on validation accuracy by
:func:`clipgap.report.selection.select_trials`.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clipgap.errors import ConfigError

SCALES = ("log", "linear")
SEARCHABLE_TRAIN = ("optimizer", "lr", "momentum", "weight_decay", "epochs", "batch_size")
"""TrainConfig keys a search may vary; the others (validation hold-out, seed, shots, device,
precision...) must be the same for every trial, or the selection would compare unlike runs."""


@dataclass(frozen=True)
class Range:
    """A numeric range: log-uniform (``scale="log"``, needs lo > 0) or uniform."""

    lo: float
    hi: float
    scale: str = "log"


@dataclass(frozen=True)
class Choice:
    """A list of values, each drawn with equal probability."""

    values: tuple


@dataclass(frozen=True)
class Trial:
    """One drawn trial of a method: its ``index`` (0-based) and the ``values`` drawn, split into
    TrainConfig overrides (``train``) and method options (``method_options``)."""

    index: int
    values: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)
    method_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchConfig:
    """``trials`` >= 1 draws per method, ``seed`` for the draws, and per-method ``space``
    overrides (method -> setting -> :class:`Range` or :class:`Choice`); a method without an
    entry uses its space from the preset file."""

    trials: int
    seed: int = 0
    space: dict[str, dict[str, Range | Choice]] = field(default_factory=dict)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_spec(spec, where: str) -> Range | Choice:
    """One space entry as a :class:`Range` (``[lo, hi, scale]``) or :class:`Choice`."""
    if not isinstance(spec, (list, tuple)) or not spec:
        raise ConfigError(
            f"{where} is {spec!r}; expected a range [lo, hi, log|linear] or a non-empty list "
            "of choices"
        )
    if len(spec) == 3 and _is_number(spec[0]) and _is_number(spec[1]) and isinstance(spec[2], str):
        lo, hi, scale = float(spec[0]), float(spec[1]), spec[2]
        if scale not in SCALES:
            raise ConfigError(f"{where}: unknown scale {scale!r}; expected one of log, linear")
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            what = "empty" if lo == hi else "inverted" if lo > hi else "not finite"
            raise ConfigError(f"{where}: range [{lo:g}, {hi:g}] is {what}; expected lo < hi")
        if scale == "log" and lo <= 0:
            raise ConfigError(f"{where}: a log range needs lo > 0, got {lo:g}")
        return Range(lo, hi, scale)
    return Choice(tuple(spec))


def _impl(method):
    """The :class:`~clipgap.methods.base.Method` of ``method``: a resolved method's own (no
    registry lookup), or looked up by name."""
    from clipgap.methods import ResolvedMethod, get_method

    return method.impl if isinstance(method, ResolvedMethod) else get_method(method)


def _name(method) -> str:
    return getattr(method, "name", method)


def _method_options(method) -> dict[str, dataclasses.Field]:
    options = _impl(method).Options
    return {f.name: f for f in dataclasses.fields(options) if f.init}


def _check_key(method, key: str, where: str) -> str:
    """``"train"`` or ``"option"``: where ``key`` belongs for ``method`` (ConfigError if none)."""
    from clipgap.training import TrainConfig

    if key in SEARCHABLE_TRAIN:
        return "train"
    if key in _method_options(method):
        return "option"
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    options = ", ".join(sorted(_method_options(method))) or "none"
    method = _name(method)
    if key in train_keys:
        raise ConfigError(
            f"{where}: train.{key} is the same for every trial and cannot be searched; "
            f"searchable: {', '.join(SEARCHABLE_TRAIN)}"
        )
    raise ConfigError(
        f"{where}: method {method!r} has no setting {key!r}; expected a train key "
        f"({', '.join(SEARCHABLE_TRAIN)}) or a {method} option ({options})"
    )


def _check_values(method, key: str, kind: str, spec: Range | Choice, where: str) -> None:
    """Every choice (and both ends of a range) must be a valid value of the setting."""
    from clipgap.training import TrainConfig

    values = spec.values if isinstance(spec, Choice) else (spec.lo, spec.hi)
    for value in values:
        if isinstance(spec, Range) and _is_int_setting(method, key, kind):
            value = int(round(value))
        try:
            if kind == "train":
                TrainConfig(**{key: value})
            else:
                _impl(method).make_options({key: value})
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {value!r} is not allowed ({exc})") from None


def parse_space(method, data, where: str) -> dict[str, Range | Choice]:
    """A method's space from YAML data, every key and value checked (``method``: a name or a
    :class:`~clipgap.methods.ResolvedMethod`, whose options class is used as it is)."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{where} must map settings to ranges or choices, got {data!r}")
    space = {}
    for key in sorted(data):
        at = f"{where}.{key}"
        kind = _check_key(method, str(key), at)
        spec = parse_spec(data[key], at)
        _check_values(method, key, kind, spec, at)
        space[key] = spec
    return space


def search_from_dict(data, methods: list[str], *, where: str = "search") -> SearchConfig:
    """The ``search:`` mapping of a study config as a checked :class:`SearchConfig`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with trials, seed and space")
    unknown = sorted(set(data) - {"trials", "seed", "space"})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]} is not a search key; expected trials, seed, space")
    trials, seed = data.get("trials"), data.get("seed", 0)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"{where}.trials is {trials!r}; expected an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{where}.seed is {seed!r}; expected an integer >= 0")
    space_data = data.get("space") or {}
    if not isinstance(space_data, dict):
        raise ConfigError(f"{where}.space must map method names to spaces")
    for method in space_data:
        if method not in methods:
            raise ConfigError(
                f"{where}.space.{method}: not a method of this study; methods: {', '.join(methods)}"
            )
    space = {m: parse_space(m, s, f"{where}.space.{m}") for m, s in space_data.items()}
    return SearchConfig(trials=trials, seed=seed, space=space)


def method_seed(seed: int, method: str) -> list[int]:
    """The Generator seed of ``method``'s trials: stable across processes and platforms."""
    return [seed, zlib.crc32(method.encode("utf-8"))]


def _is_int_setting(method, key: str, kind: str) -> bool:
    from clipgap.training import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)} if kind == "train" else None
    declared = (fields[key] if fields else _method_options(method)[key]).type
    return declared in (int, "int")


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def _draw(rng: np.random.Generator, spec: Range | Choice, integer: bool):
    if isinstance(spec, Choice):
        return spec.values[int(rng.integers(len(spec.values)))]
    if spec.scale == "log":
        value = math.exp(rng.uniform(math.log(spec.lo), math.log(spec.hi)))
    else:
        value = rng.uniform(spec.lo, spec.hi)
    return int(min(max(round(value), spec.lo), spec.hi)) if integer else _round(value)


def draw_trials(method, space: dict[str, Range | Choice], *, trials: int, seed: int) -> list[Trial]:
    """``trials`` reproducible draws from ``method``'s ``space`` (see the module docstring);
    ``method``: a name or a :class:`~clipgap.methods.ResolvedMethod` (no lookup then)."""
    if trials < 1:
        raise ConfigError(f"search.trials is {trials!r}; expected an integer >= 1")
    name = _name(method)
    rng = np.random.default_rng(method_seed(seed, name))
    kinds = {key: _check_key(method, key, f"search.space.{name}.{key}") for key in space}
    out = []
    for index in range(trials):
        values = {
            key: _draw(rng, space[key], _is_int_setting(method, key, kinds[key]))
            for key in sorted(space)
        }
        out.append(
            Trial(
                index,
                values,
                {k: v for k, v in values.items() if kinds[k] == "train"},
                {k: v for k, v in values.items() if kinds[k] == "option"},
            )
        )
    return out


def method_space(search: SearchConfig, method, default: dict | None) -> dict:
    """The space ``method`` (a name or a resolved method) is searched over: the study's
    override, else ``default`` (the preset file's space for the method, YAML data), else a
    ConfigError naming the key."""
    name = _name(method)
    if name in search.space:
        return search.space[name]
    if not default:
        raise ConfigError(
            f"search.space.{name}: the preset has no search space for {name!r}; give one "
            f"in the study (search.space.{name}: {{lr: [lo, hi, log]}})"
        )
    return parse_space(method, default, f"presets space.{name}")


def plan_trials(search: SearchConfig, methods: list, defaults: dict[str, dict]) -> dict:
    """Every method's trials (method name -> list of :class:`Trial`), the same count for each;
    ``methods``: names or resolved methods (looked up once already: no lookup here)."""
    return {
        _name(m): draw_trials(
            m, method_space(search, m, defaults.get(_name(m))), trials=search.trials,
            seed=search.seed,
        )
        for m in methods
    }  # fmt: skip


def spec_data(spec: Range | Choice) -> list:
    """A space entry as it is written in YAML: ``[lo, hi, scale]`` or the list of choices."""
    return [spec.lo, spec.hi, spec.scale] if isinstance(spec, Range) else list(spec.values)


def search_data(search: SearchConfig) -> dict:
    """``search`` as YAML data (what :func:`search_from_dict` reads back): the study identity
    and ``study.yaml`` hold it in this form."""
    space = {m: {k: spec_data(s) for k, s in sorted(sp.items())} for m, sp in search.space.items()}
    return {"trials": search.trials, "seed": search.seed, "space": space}
