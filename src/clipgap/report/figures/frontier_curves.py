"""The frontier figures: in-domain and DG gain against forgetting along alpha, one line per
method, averaged over tasks and per task (:mod:`clipgap.report.frontier`)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from clipgap.record import OUTCOME_LABELS
from clipgap.report.figures.canvas import Plot, arm_styles, save
from clipgap.report.frontier import Frontier
from clipgap.report.labels import method_label, order_arms

GAINS = ("delta_id", "delta_dg")
AXIS = {
    "delta_id": "dID = accuracy at α − zero-shot, task test split",
    "delta_dg": "dDG = the same on shifted domains",
    "cf": "CF = the same on control tasks (< 0 = forgetting)",
}
NAMES = {
    "mean": "frontier_mean.png",
    "delta_id": "frontier_id_by_task.png",
    "delta_dg": "frontier_dg_by_task.png",
}
HOW = (
    "Each line runs from α = 0 (the zero-shot model, at the origin) through the scored alphas "
    "to α = 1 (large marker: the fine-tuned model); the star is the outcome at the alphas "
    "chosen on validation data."
)


def _drawable(curves: pd.DataFrame, gain: str) -> bool:
    return bool(curves[[gain, "cf"]].notna().all(axis=1).any())


def _line(ax, curve: pd.DataFrame, gain: str, star, style, label=None) -> None:
    """One method's curve (x = CF, y = gain) with its α = 1 end and its selected point."""
    color, marker = style
    curve = curve.dropna(subset=[gain, "cf"]).sort_values("alpha")
    if curve.empty:
        return
    ax.plot(curve["cf"], curve[gain], color=color, marker=marker, ms=4, lw=1.4, label=label)
    end = curve[curve["alpha"] == 1.0]
    if not end.empty:
        ax.plot(end["cf"], end[gain], color=color, marker=marker, ms=9, mec="black", ls="")
    if star is not None and all(math.isfinite(v) for v in star):
        ax.plot(*star, color=color, marker="*", ms=15, mec="black", mew=0.8, ls="")


def _frame(ax, gain: str, title: str) -> None:
    ax.axhline(0, color="0.6", lw=0.8, zorder=0)
    ax.axvline(0, color="0.6", lw=0.8, zorder=0)
    ax.set_xlabel(AXIS["cf"])
    ax.set_ylabel(AXIS[gain])
    ax.set_title(title)
    ax.grid(alpha=0.3)


def plot_mean(frontier: Frontier, out: Path) -> Plot | None:
    """Panels dID vs CF and dDG vs CF, each method's curve averaged over its tasks."""
    curves = frontier.curves
    gains = [g for g in GAINS if _drawable(curves, g)]
    if not gains:
        return None
    arms = order_arms(curves["arm"])
    style = arm_styles(arms)
    fig = Figure(figsize=(6.2 * len(gains), 5.6), layout="constrained")
    axes = fig.subplots(1, len(gains), squeeze=False)[0]
    for ax, gain in zip(axes, gains, strict=True):
        for arm in arms:
            mine = curves[curves["arm"] == arm].dropna(subset=[gain, "cf"])
            units = set(mine["unit"])
            mean = mine.groupby("alpha", as_index=False)[[gain, "cf"]].mean()
            cells = frontier.cells[
                (frontier.cells["arm"] == arm) & frontier.cells["unit"].isin(units)
            ]
            star = (cells["cf"].mean(), cells[gain].mean()) if len(cells) else None
            label = f"{method_label(arm, mark=True)} ({len(units)} tasks)"
            _line(ax, mean, gain, star, style[arm], label)
        _frame(ax, gain, f"{OUTCOME_LABELS[gain]} against CF, mean over tasks")
    axes[0].legend(fontsize=8, loc="best", framealpha=0.9)
    fig.suptitle("Gain against forgetting along interpolation (WiSE-FT), per method", fontsize=13)
    save(fig, out / NAMES["mean"])
    return Plot(
        NAMES["mean"],
        "Frontier along interpolation, mean over tasks",
        f"{HOW} Each point is the mean over the method's tasks of the per-task seed means at "
        "that alpha.",
    )


def plot_by_task(frontier: Frontier, gain: str, out: Path) -> Plot | None:
    """One panel per task: the gain against CF along alpha, one line per method."""
    curves = frontier.curves
    if not _drawable(curves, gain):
        return None
    units = sorted(curves.dropna(subset=[gain, "cf"])["unit"].unique())
    arms = order_arms(curves["arm"])
    style = arm_styles(arms)
    ncols = min(3, len(units))
    nrows = math.ceil(len(units) / ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.9 * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    cells = frontier.cells.set_index(["unit", "arm"])
    for ax, unit in zip(axes, units, strict=False):
        for arm in arms:
            curve = curves[(curves["unit"] == unit) & (curves["arm"] == arm)]
            star = None
            if (unit, arm) in cells.index:
                star = (cells.at[(unit, arm), "cf"], cells.at[(unit, arm), gain])
            _line(ax, curve, gain, star, style[arm], method_label(arm, mark=True))
        _frame(ax, gain, unit)
        ax.xaxis.label.set_size(8)
        ax.yaxis.label.set_size(8)
    for ax in axes[len(units) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncol=min(6, len(labels)))
    name = OUTCOME_LABELS[gain]
    fig.suptitle(f"{name} against CF along interpolation, per task", fontsize=13)
    save(fig, out / NAMES[gain])
    return Plot(
        NAMES[gain],
        f"Frontier per task: {name} against CF",
        f"{HOW} One panel per task; points are seed means at each alpha.",
    )


def plot_frontier(frontier: Frontier | None, out: Path) -> list[Plot]:
    """The frontier figures (none without interpolation points); stale ones are removed."""
    plots = []
    if frontier is not None:
        plots = [plot_mean(frontier, out), *(plot_by_task(frontier, g, out) for g in GAINS)]
    plots = [p for p in plots if p is not None]
    drawn = {p.name for p in plots}
    for name in set(NAMES.values()) - drawn:
        (out / name).unlink(missing_ok=True)
    return plots
