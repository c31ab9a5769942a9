"""World variants: ``world:KEY=VALUE[,KEY=VALUE]`` names a world CLIP pretrained with some dials
of its config turned (``world:mention_rates.texture=0.1``).

A dial is a dotted key of the configs pretraining reads: ``mention_rates.ATTR`` (the probability
that a caption names ATTR), ``style_mix.STYLE`` (relative weight of a style among pretraining
images), the world's ``seed``, ``noise`` and ``mosaic_cell``, and ``pretrain.FIELD`` (steps,
batch_size, lr, weight_decay, warmup_steps, threads, seed). Keys that would change the tasks
rather than the model (``image_size``, ``train_size``, ``test_size``) are not dials. The hidden
attribute (``light``) takes no mention rate: that it is never named is what the world's light
tasks measure.

:func:`apply_dials` parses and validates a variant's text and returns its canonical spelling
(dials in :data:`DIALS` order, values as Python writes them), so that one variant has one name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from clipgap.errors import ConfigError, UnknownNameError, suggest
from clipgap.world.config import HIDDEN_ATTRIBUTE, MENTIONABLE, STYLES, PretrainConfig, WorldConfig


@dataclass(frozen=True)
class Dial:
    """One dial: field ``field`` of the ``section`` config (``world`` or ``pretrain``), entry
    ``item`` of it when the field is a mapping; values of type ``kind``."""

    section: str
    field: str
    item: str | None
    kind: type
    help: str


def _dials() -> dict[str, Dial]:
    dials = {
        f"mention_rates.{a}": Dial(
            "world", "mention_rates", a, float, f"share of captions that name the {a}, in [0, 1]"
        )
        for a in MENTIONABLE
    }
    for s in STYLES:
        dials[f"style_mix.{s}"] = Dial(
            "world", "style_mix", s, float, f"relative weight of {s} pretraining images, >= 0"
        )
    dials["seed"] = Dial("world", "seed", None, int, "seed of the pretraining scenes")
    dials["noise"] = Dial("world", "noise", None, float, "pixel noise std, in [0, 0.5]")
    dials["mosaic_cell"] = Dial("world", "mosaic_cell", None, int, "mosaic tile size, pixels")
    for name, kind, what in (
        ("steps", int, "pretraining steps"),
        ("batch_size", int, "image-caption pairs per step"),
        ("lr", float, "peak learning rate"),
        ("weight_decay", float, "AdamW weight decay"),
        ("warmup_steps", int, "linear warmup steps"),
        ("threads", int, "torch threads (they change the last bits of the weights)"),
        ("seed", int, "seed of the initial weights and of the batches"),
    ):
        dials[f"pretrain.{name}"] = Dial("pretrain", name, None, kind, what)
    return dials


DIALS: dict[str, Dial] = _dials()
SYNTAX = "world:KEY=VALUE[,KEY=VALUE]"
NOT_DIALS = ("image_size", "train_size", "test_size")
# How the dial keys are written, short enough for one error line.
DIAL_FORMS = (
    f"mention_rates.{{{','.join(MENTIONABLE)}}}, style_mix.{{{','.join(STYLES)}}}, seed, noise, "
    "mosaic_cell, pretrain.{steps,batch_size,lr,weight_decay,warmup_steps,threads,seed}"
)


def _close_dials(key: str) -> str:
    """ " (did you mean ...?)" from spelling, or from the key's last part (``threads``)."""
    close = suggest(key, DIALS)
    tail = key.rpartition(".")[2]
    by_tail = [k for k in DIALS if k.rpartition(".")[2] == tail]
    if close or not by_tail:
        return close
    return " (did you mean " + " or ".join(repr(k) for k in by_tail[:3]) + "?)"


def _dial(key: str, spec: str) -> Dial:
    if key == f"mention_rates.{HIDDEN_ATTRIBUTE}":
        raise ConfigError(
            f"model {spec!r}: {key}: {HIDDEN_ATTRIBUTE!r} is the hidden attribute, never named in "
            f"captions (that is what world:{HIDDEN_ATTRIBUTE} measures); mention rates can be set "
            f"for: {', '.join(MENTIONABLE)}"
        )
    if key in NOT_DIALS:
        raise ConfigError(
            f"model {spec!r}: {key} is not a dial: it changes the tasks' images, not the model; "
            f"dials: {DIAL_FORMS}"
        )
    if key not in DIALS:
        raise UnknownNameError(
            f"model {spec!r}: unknown world dial {key!r}{_close_dials(key)}; dials: {DIAL_FORMS}"
        )
    return DIALS[key]


def _value(key: str, text: str, dial: Dial, spec: str) -> int | float:
    try:
        value = dial.kind(text)
    except ValueError:
        what = "an integer" if dial.kind is int else "a number"
        raise ConfigError(f"model {spec!r}: {key}={text!r}: expected {what}") from None
    if not math.isfinite(value):
        raise ConfigError(f"model {spec!r}: {key}={text!r}: expected a finite number")
    return value


def parse_dials(arg: str, spec: str) -> dict[str, int | float]:
    """``KEY=VALUE[,KEY=VALUE]`` as typed values in :data:`DIALS` order (not yet range-checked)."""
    given: dict[str, int | float] = {}
    for item in arg.split(","):
        key, eq, text = (part.strip() for part in item.partition("="))
        if not eq or not key or not text:
            raise ConfigError(
                f"model {spec!r}: {item.strip()!r} is not KEY=VALUE; expected {SYNTAX}, "
                f"e.g. world:mention_rates.texture=0.1"
            )
        dial = _dial(key, spec)
        if key in given:
            raise ConfigError(f"model {spec!r}: dial {key} is given twice")
        given[key] = _value(key, text, dial, spec)
    return {k: given[k] for k in DIALS if k in given}


def apply_dials(
    base: str, arg: str, world: WorldConfig, pretrain: PretrainConfig
) -> tuple[str, WorldConfig, PretrainConfig]:
    """(canonical name, world config, pretraining config) of variant ``base:arg``.

    UnknownNameError for a key that is not a dial, ConfigError (naming the key) for a malformed
    item, a value of the wrong type or out of range, or a mention rate of the hidden attribute.
    """
    spec = f"{base}:{arg}"
    values = parse_dials(arg, spec)
    changes: dict[str, dict] = {"world": {}, "pretrain": {}}
    for key, value in values.items():
        dial = DIALS[key]
        if dial.item is None:
            changes[dial.section][dial.field] = value
        else:
            config = world if dial.section == "world" else pretrain
            mapping = changes[dial.section].setdefault(
                dial.field, dict(getattr(config, dial.field))
            )
            mapping[dial.item] = value
    try:
        world = replace(world, **changes["world"])
        pretrain = replace(pretrain, **changes["pretrain"])
    except ConfigError as exc:
        raise ConfigError(f"model {spec!r}: {exc}") from None
    name = f"{base}:" + ",".join(f"{k}={v!r}" for k, v in values.items())
    return name, world, pretrain
