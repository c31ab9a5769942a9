"""Control panels: the fixed tasks a world task's forgetting (CF) is measured on.

CF on a control task is meant to read forgetting. A control that shares a label attribute with
the trained task (``world:color`` for ``world:color_shape``) mostly reads transfer instead, so a
world task's panel holds only single-attribute tasks of *other* attributes. The panel spans the
zero-shot range: one task from each tier of :data:`CONTROL_TIERS` (easy, middle, hard for the
default world CLIP), the first in its tier that shares no attribute with the trained task; a
tier with none left is filled by the first unused candidate of any tier. So every panel has
:data:`PANEL_SIZE` tasks, in the fixed order of the tiers, and depends only on the trained
task's attributes (a class-count variant ``TASK/K`` and a style ``@STYLE`` get ``TASK``'s panel).
``light`` is never a control: it sits at chance zero-shot, where forgetting cannot show.
"""

from __future__ import annotations

import logging

from clipgap.errors import ClipgapError
from clipgap.world.tasks import task_spec

log = logging.getLogger(__name__)

# Single-attribute control tasks by zero-shot top-1 of the default world CLIP (README table):
# easy (color .99, count .93), middle (texture .78, size .64), hard (shape .29, position .26).
CONTROL_TIERS: tuple[tuple[str, ...], ...] = (
    ("color", "count"),
    ("texture", "size"),
    ("shape", "position"),
)
PANEL_SIZE = len(CONTROL_TIERS)
PREFIX = "world:"


def world_task_name(spec: str) -> str | None:
    """``TASK[/K]`` of a world dataset spec ``world:TASK[/K][@STYLE]``, else None."""
    if not spec.startswith(PREFIX):
        return None
    return spec.removeprefix(PREFIX).partition("@")[0]


def task_attributes(spec: str) -> tuple[str, ...]:
    """The label attributes of world dataset spec ``spec`` (``()`` for another dataset)."""
    name = world_task_name(spec)
    return () if name is None else task_spec(name).attributes


def control_panel(spec: str) -> list[str] | None:
    """The control tasks (``world:TASK`` specs) of world task ``spec``; None when ``spec`` is
    not a world task. UnknownNameError / DataError for a world task that does not exist."""
    name = world_task_name(spec)
    if name is None:
        return None
    shared = set(task_spec(name).attributes)
    free = [[t for t in tier if t not in shared] for tier in CONTROL_TIERS]
    picks = [tier[0] if tier else None for tier in free]
    spare = [t for tier in free for t in tier if t not in picks]
    picks = [p if p is not None else spare.pop(0) for p in picks]
    order = [t for tier in CONTROL_TIERS for t in tier]
    return [PREFIX + t for t in sorted(picks, key=order.index)]


def _known_attributes(spec: str) -> tuple[str, ...]:
    try:
        return task_attributes(spec)
    except ClipgapError:  # an unknown task is reported where the study loads its tasks
        return ()


def shared_controls(spec: str, controls: list[str]) -> dict[str, list[str]]:
    """Control -> the label attributes it shares with world task ``spec`` (only those sharing;
    specs that name no world task share nothing)."""
    mine = set(_known_attributes(spec))
    if not mine:
        return {}
    shared = {c: sorted(mine & set(_known_attributes(c))) for c in controls}
    return {c: attrs for c, attrs in shared.items() if attrs}


def warn_shared_controls(spec: str, controls: list[str], *, where: str = "controls") -> None:
    """Log one warning line per given control that shares a label attribute with ``spec``."""
    for control, attrs in shared_controls(spec, controls).items():
        log.warning(
            "%s: control %s of %s shares its label attribute %s, so its CF mixes forgetting with "
            "transfer (the task's default panel: %s)",
            where,
            control,
            spec,
            "+".join(attrs),
            ", ".join(_panel_or_none(spec)),
        )


def _panel_or_none(spec: str) -> list[str]:
    try:
        return control_panel(spec) or []
    except ClipgapError:
        return []
