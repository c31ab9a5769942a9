"""What every report figure shares: the :class:`Plot` a figure function returns, one colour and
marker per method, reproducible PNG saving on matplotlib's Agg canvas (no display, no pyplot
state), and task names placed next to points by adjustText so that they do not overlap (a fixed
iteration count keeps the figure reproducible).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from adjustText import adjust_text
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 120
MARKERS = "osD^vP*Xh<>p"
# PNG metadata that varies between matplotlib versions is dropped, so reruns give the same bytes.
PNG_METADATA = {"Software": None}


@dataclass(frozen=True)
class Plot:
    """A figure file (``name`` inside the figures directory) with its title and caption."""

    name: str
    title: str
    caption: str


def arm_styles(arms: list[str]) -> dict[str, tuple]:
    cmap = matplotlib.colormaps["tab10"]
    return {arm: (cmap(i % 10), MARKERS[i % len(MARKERS)]) for i, arm in enumerate(arms)}


def save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)


# Above this many labels in one panel the names would hide the data: none is drawn.
MAX_LABELS = 40
ITERATIONS = 300
FONT_SIZE = 8


def short_names(units: Iterable[str]) -> dict[str, str]:
    """Task names without the source prefix they all share (``world:digits`` -> ``digits``
    when every task is a ``world:`` task); unchanged otherwise."""
    units = sorted(set(units))
    prefixes = {u.partition(":")[0] for u in units if ":" in u}
    if len(prefixes) == 1 and all(":" in u for u in units):
        return {u: u.partition(":")[2] for u in units}
    return {u: u for u in units}


def label_points(
    ax: Axes,
    x: Sequence[float],
    y: Sequence[float],
    names: Sequence[str],
    *,
    colors: Sequence | None = None,
    obstacles: tuple[Sequence[float], Sequence[float]] | None = None,
    fontsize: float = FONT_SIZE,
) -> int:
    """Write ``names[i]`` next to the point ``(x[i], y[i])``, with a thin leader line where a
    label had to move away; ``obstacles`` are further points labels keep off. Points with a
    non-finite coordinate get no label. Returns how many labels were drawn (0 above
    ``MAX_LABELS``)."""
    keep = [i for i in range(len(names)) if math.isfinite(x[i]) and math.isfinite(y[i])]
    if not keep or len(keep) > MAX_LABELS:
        return 0
    texts = [
        ax.text(
            x[i], y[i], f" {names[i]}", fontsize=fontsize, ha="left", va="bottom",
            color=colors[i] if colors is not None else "0.15", zorder=5,
        )
        for i in keep
    ]  # fmt: skip
    if ax.figure.canvas.__class__.__name__ == "FigureCanvasBase":
        FigureCanvasAgg(ax.figure)  # adjustText measures the labels with a renderer
    px, py = _points(x, y, keep, obstacles)
    adjust_text(
        texts, x=px, y=py, target_x=[x[i] for i in keep], target_y=[y[i] for i in keep],
        ax=ax, iter_lim=ITERATIONS, time_lim=None, min_arrow_len=8,
        arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.5},
    )  # fmt: skip
    return len(texts)


def _points(x, y, keep, obstacles) -> tuple[np.ndarray, np.ndarray]:
    px = np.array([x[i] for i in keep], dtype=float)
    py = np.array([y[i] for i in keep], dtype=float)
    if obstacles is not None:
        ox, oy = (np.asarray(v, dtype=float) for v in obstacles)
        finite = np.isfinite(ox) & np.isfinite(oy)
        px, py = np.concatenate([px, ox[finite]]), np.concatenate([py, oy[finite]])
    return px, py
