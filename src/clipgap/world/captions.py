"""Pretraining captions: templated sentences naming a random subset of a scene's attributes.

Each mentionable attribute is named with its ``WorldConfig.mention_rates`` probability; the
hidden attribute (``light``) has no words here at all, so captions never carry it.
"""

from __future__ import annotations

import numpy as np

from clipgap.world.config import ATTRIBUTES, MENTIONABLE, WorldConfig
from clipgap.world.scenes import Scenes

PREFIXES = ("a photo of", "an image of", "a picture of", "there is", "a rendering of")
PLURALS = {"cross": "crosses"}
GENERIC = ("shape", "object")


def _plural(word: str) -> str:
    return PLURALS.get(word, word + "s")


def _noun_phrase(vals: dict[str, str | None], count: int, generic: str) -> str:
    """``two large red circles``, ``a small shape``, ``some green objects`` ..."""
    noun = vals["shape"] or generic
    words = []
    if vals["count"]:
        words.append(vals["count"])
    else:
        words.append("a" if count == 1 else "some")
    words += [w for w in (vals["size"], vals["color"]) if w]
    words.append(noun if count == 1 else _plural(noun))
    if words[0] == "a" and words[1][0] in "aeiou":
        words[0] = "an"
    return " ".join(words)


def caption(vals: dict[str, str | None], count: int, prefix: str, generic: str, order: int) -> str:
    """One caption; ``vals[a]`` is the word for attribute ``a`` or None when not mentioned."""
    extras = []
    if vals["texture"]:
        extras.append(f"on a {vals['texture']} background")
    if vals["position"]:
        extras.append(f"in the {vals['position']} half")
    if order % 2 and len(extras) == 2:
        extras.reverse()
    return " ".join([prefix, _noun_phrase(vals, count, generic), *extras]) + "."


def make_captions(scenes: Scenes, rng: np.random.Generator, cfg: WorldConfig) -> list[str]:
    """One caption per scene; which attributes are named is drawn from ``cfg.mention_rates``."""
    n = len(scenes)
    named = {a: rng.random(n) < cfg.mention_rates.get(a, 0.0) for a in MENTIONABLE}
    prefix = rng.integers(0, len(PREFIXES), n)
    generic = rng.integers(0, len(GENERIC), n)
    order = rng.integers(0, 2, n)
    out = []
    for i in range(n):
        vals = {a: ATTRIBUTES[a][scenes.attrs[a][i]] if named[a][i] else None for a in MENTIONABLE}
        count = int(scenes.attrs["count"][i]) + 1
        out.append(caption(vals, count, PREFIXES[prefix[i]], GENERIC[generic[i]], order[i]))
    return out
