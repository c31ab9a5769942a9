"""The report's figures, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Each ``plot_*`` function draws one PNG into the figures directory and returns a :class:`Plot`
(or None when the study has no data for it, e.g. no DG domains).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clipgap.report.analysis import Analysis
from clipgap.report.formatting import num
from clipgap.report.labels import method_label, order_arms
from clipgap.report.relations import lookup
from clipgap.report.render.annotate import label_points, short_names
from clipgap.report.scopes import scope_name

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


def plot_difficulty(analysis: Analysis, out: Path) -> Plot | None:
    """Two panels, ss vs dID and ACS vs dID: per-task seed means and a least-squares line per
    arm, plus, per claim group, the line over its task means (five paper methods averaged)."""
    cells, relations = analysis.cells, analysis.relations
    if cells["delta_id"].notna().sum() == 0:
        return None
    arms = order_arms(cells["arm"])
    style = arm_styles(arms)
    by_task = analysis.difficulty.set_index("unit")
    fig = Figure(figsize=(12, 6.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    panels = (("silhouette_modality", "ss (modality)"), ("acs", "ACS"))
    for ax, (measure, name) in zip(axes, panels, strict=True):
        for arm in arms:
            mine = cells[cells["arm"] == arm]
            x = by_task.loc[mine["unit"], measure].to_numpy()
            color, marker = style[arm]
            ax.errorbar(
                x, mine["delta_id"], yerr=mine["delta_id_std"].fillna(0), fmt=marker,
                color=color, ms=6, alpha=0.85, capsize=2, lw=1,
            )  # fmt: skip
            rel = lookup(relations, arm, measure, "delta_id")
            label = f"{method_label(arm, mark=True)} (ρ = {_signed(rel['spearman_rho'])})"
            _fit_line(ax, x, rel, color=color, label=label, marker=marker)
        for k, group in enumerate(analysis.groups):
            scope = scope_name(group)
            pooled = lookup(relations, scope, measure, "delta_id")
            label = f"{scope}, task means (ρ = {_signed(pooled['spearman_rho'])})"
            x = analysis.means[scope][measure].to_numpy(dtype=float)
            _fit_line(ax, x, pooled, color="black", label=label, ls=("--", ":", "-.")[k % 3])
        ax.axhline(0, color="0.6", lw=0.8, zorder=0)
        ax.set_xlabel(f"{name} of the task (zero-shot)")
        ax.set_title(f"{name} vs in-domain gain")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    axes[0].set_ylabel("dID = fine-tuned − zero-shot top-1")
    fig.suptitle("Task difficulty vs in-domain gain, per method", fontsize=13)
    names = short_names(cells["unit"])
    for ax, (measure, _) in zip(axes, panels, strict=True):
        _label_tasks(ax, cells, by_task[measure], names)
    name = "difficulty_vs_delta_id.png"
    save(fig, out / name)
    return Plot(
        name,
        "Difficulty vs in-domain gain",
        "One point per (task, method), mean ± std over seeds; lines are least-squares fits per "
        "method, and (black) over the task means of the five paper methods that claims use; "
        "ρ is Spearman's over tasks; † = not in claims. Each task is named once, at its "
        "highest point.",
    )


def _label_tasks(ax, cells: pd.DataFrame, measure: pd.Series, names: dict[str, str]) -> None:
    """Each task's name once, next to its highest point (all points kept clear)."""
    done = cells.dropna(subset=["delta_id"])
    top = done.groupby("unit")["delta_id"].max()
    x = measure.reindex(top.index).to_numpy(dtype=float)
    others = (measure.reindex(done["unit"]).to_numpy(dtype=float), done["delta_id"].to_numpy())
    names = [names[u] for u in top.index]
    label_points(ax, x, top.to_numpy(), names, obstacles=others, fontsize=9)


def _signed(value) -> str:
    return f"{value:+.2f}" if math.isfinite(value) else "n/a"


def _fit_line(ax, x, rel: dict, *, color, label: str, marker=None, ls="-") -> None:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if math.isfinite(rel["slope"]) and len(x):
        grid = np.array([x.min(), x.max()])
        ax.plot(grid, rel["intercept"] + rel["slope"] * grid, color=color, ls=ls, lw=1.5)
    # One legend entry carrying both the marker and the line.
    ax.plot([], [], color=color, marker=marker, ls=ls, label=label)


def plot_tradeoff(cells, methods: pd.DataFrame, out: Path) -> Plot | None:
    """dDG (x) against CF (y): each method's mean over tasks with std-over-tasks error bars, and
    its per-task seed means as faint points."""
    if cells[["delta_dg", "cf"]].notna().all(axis=1).sum() == 0:
        return None
    arms = order_arms(cells["arm"])
    style = arm_styles(arms)
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax = fig.subplots()
    for arm in arms:
        color, marker = style[arm]
        mine = cells[cells["arm"] == arm]
        ax.scatter(mine["delta_dg"], mine["cf"], color=color, marker=marker, alpha=0.25, s=22)
        row = methods[methods["arm"] == arm].iloc[0]
        ax.errorbar(
            row["delta_dg"], row["cf"], xerr=_zero(row["delta_dg_task_std"]),
            yerr=_zero(row["cf_task_std"]), fmt=marker, color=color, ms=10, capsize=4,
            mec="black", mew=0.8, lw=1.5, label=method_label(arm, mark=True),
        )  # fmt: skip
    ax.axhline(0, color="0.5", lw=0.8, zorder=0)
    ax.axvline(0, color="0.5", lw=0.8, zorder=0)
    ax.set_xlabel("dDG = fine-tuned − zero-shot top-1 on shifted domains")
    ax.set_ylabel("CF = fine-tuned − zero-shot top-1 on control tasks (< 0 = forgetting)")
    ax.set_title("Domain generalisation vs forgetting, per method")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="best", framealpha=0.9, title="method (mean ± std over tasks)")
    points = cells.dropna(subset=["delta_dg", "cf"])
    names = short_names(cells["unit"])
    labelled = label_points(
        ax, points["delta_dg"].to_numpy(), points["cf"].to_numpy(),
        [names[u] for u in points["unit"]], colors=[style[a][0] for a in points["arm"]],
        obstacles=(methods["delta_dg"], methods["cf"]),
    )  # fmt: skip
    name = "dg_vs_cf.png"
    save(fig, out / name)
    return Plot(
        name,
        "DG gain vs forgetting",
        "Large markers: mean over tasks of each method's per-task seed mean, error bars = std "
        "over tasks; faint markers: individual tasks"
        + (", named in their method's colour" if labelled else "")
        + ". Up and right is better.",
    )


def _zero(value) -> float:
    return float(value) if math.isfinite(value) else 0.0


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


def make_plots(analysis: Analysis, out: Path) -> list[Plot]:
    """Every figure the study's data allow, written into ``out``; stale ones are removed."""
    from clipgap.report.render.frontier_plot import plot_frontier
    from clipgap.report.render.measures import plot_measures
    from clipgap.report.render.shots_plot import plot_shots

    plots = [
        plot_difficulty(analysis, out),
        plot_tradeoff(analysis.cells, analysis.methods, out),
        *plot_forgetting(analysis.forgetting, out),
        plot_shots(analysis.shots, out),
        *plot_measures(analysis.measures, out),
        *plot_frontier(analysis.frontier, out),
    ]
    plots = [p for p in plots if p is not None]
    drawn = {p.name for p in plots}
    for name in FIGURE_NAMES - drawn:
        (out / name).unlink(missing_ok=True)
    return plots


FIGURE_NAMES = {
    "difficulty_vs_delta_id.png",
    "dg_vs_cf.png",
    "forgetting_heatmap.png",
    "forgetting_by_method.png",
    "outcomes_vs_shots.png",
}
