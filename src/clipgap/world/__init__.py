"""The embedded default: a procedurally generated image world and tiny CLIPs pretrained on it.

Nothing here downloads anything. ``clipgap.world.tasks`` registers the ``world:TASK[@STYLE]``
datasets, ``clipgap.world.model`` registers the ``world`` and ``world-tiny`` backbones (pretrained
on first use, then cached), and ``clipgap world sample`` draws a grid of examples.

Modules: ``config`` (vocabulary and typed configs), ``scenes`` (sampling), ``render`` (styles),
``captions``, ``tasks``, ``pretrain`` (open_clip ``ClipLoss``), ``threads`` (the fixed thread
count pretraining runs with), ``model`` (checkpoint cache),
``grid``.
"""

from clipgap.world.config import (
    ATTRIBUTES,
    HIDDEN_ATTRIBUTE,
    MAIN_STYLE,
    STYLES,
    PretrainConfig,
    WorldConfig,
)

__all__ = [
    "ATTRIBUTES",
    "HIDDEN_ATTRIBUTE",
    "MAIN_STYLE",
    "STYLES",
    "PretrainConfig",
    "WorldConfig",
]
