"""The forgetting figures: heatmaps of CF per (fine-tuning task, control task), averaged over
methods, and one panel per method on a shared colour scale."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clipgap.report.figures.canvas import Plot, save
from clipgap.report.formatting import num
from clipgap.report.labels import method_label, order_arms


def plot_forgetting(forgetting: pd.DataFrame, out: Path) -> list[Plot]:
    """Heatmap trained task x control task of CF (mean over methods of the seed means), and,
    with several methods, one heatmap per method on a shared colour scale."""
    if forgetting.empty:
        return []
    rows = sorted(forgetting["unit"].unique())
    cols = sorted(forgetting["control"].unique())
    mean = (
        forgetting.groupby(["unit", "control"])["cf"].mean().unstack().reindex(rows, columns=cols)
    )
    limit = _limit(mean.to_numpy(dtype=float))
    fig = Figure(figsize=(1.3 * len(cols) + 3.5, 0.6 * len(rows) + 2.5), layout="constrained")
    ax = fig.subplots()
    image = _heatmap(ax, mean, limit)
    ax.set_title("Forgetting: CF per control task (mean over methods and seeds)")
    ax.set_xlabel("control task (not trained on)")
    ax.set_ylabel("fine-tuning task")
    fig.colorbar(image, ax=ax, label="CF = fine-tuned − zero-shot top-1")
    save(fig, out / "forgetting_heatmap.png")
    plots = [
        Plot(
            "forgetting_heatmap.png",
            "Forgetting heatmap",
            "Rows: task fine-tuned on; columns: control task; red = accuracy lost. "
            "Grey = not measured.",
        )
    ]
    arms = order_arms(forgetting["arm"])
    if len(arms) > 1:
        limit = _limit(forgetting["cf"].to_numpy(dtype=float))
        plots.append(_forgetting_grid(forgetting, arms, rows, cols, limit, out))
    return plots


def _limit(values: np.ndarray) -> float:
    """Symmetric colour limit: the largest |CF| (at least 0.001, so all-zero maps still draw)."""
    finite = np.abs(values[np.isfinite(values)])
    return max(float(finite.max()) if finite.size else 0.0, 1e-3)


def _forgetting_grid(forgetting, arms, rows, cols, limit, out: Path) -> Plot:
    ncols = min(3, len(arms))
    nrows = math.ceil(len(arms) / ncols)
    size = (ncols * (0.8 * len(cols) + 1.2) + 2.5, nrows * (0.4 * len(rows) + 1.0) + 1.5)
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    image = None
    for ax, arm in zip(axes, arms, strict=False):
        mine = forgetting[forgetting["arm"] == arm]
        table = mine.pivot(index="unit", columns="control", values="cf")
        image = _heatmap(ax, table.reindex(rows, columns=cols), limit, fontsize=7)
        ax.set_title(method_label(arm, mark=True))
    for i, ax in enumerate(axes):
        ax.set_visible(i < len(arms))
        # tick labels only on the left column and on panels with no panel below them
        ax.xaxis.set_tick_params(labelbottom=i + ncols >= len(arms))
        ax.yaxis.set_tick_params(labelleft=i % ncols == 0)
    fig.colorbar(image, ax=list(axes[: len(arms)]), label="CF = fine-tuned − zero-shot top-1")
    fig.suptitle("Forgetting per method (rows: fine-tuning task; columns: control task)")
    save(fig, out / "forgetting_by_method.png")
    return Plot(
        "forgetting_by_method.png",
        "Forgetting per method",
        "As the heatmap above, one panel per method (mean over seeds), same colour scale.",
    )


def _heatmap(ax, table: pd.DataFrame, limit: float, fontsize: int = 8):
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="0.85")
    values = np.ma.masked_invalid(table.to_numpy(dtype=float))
    image = ax.imshow(values, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(table.index)), table.index)
    for (i, j), value in np.ndenumerate(table.to_numpy(dtype=float)):
        if math.isfinite(value):
            shade = "white" if abs(value) > 0.6 * limit else "black"
            text = num(value, 3, signed=True)
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=shade)
    return image
