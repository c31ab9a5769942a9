"""The figures of fine-tuning outcomes per method: task difficulty against the in-domain gain
(with least-squares lines per method and per claim group), the DG gain against forgetting, and
the outcomes against training images per class (limited-data studies only).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clipgap.record import OUTCOME_LABELS
from clipgap.report.analysis import Analysis
from clipgap.report.figures.canvas import Plot, arm_styles, label_points, save, short_names
from clipgap.report.labels import OUTCOMES, method_label, order_arms, shots_key
from clipgap.report.relations import lookup
from clipgap.report.scopes import scope_name


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


def plot_shots(shots: pd.DataFrame, out: Path) -> Plot | None:
    """One panel per outcome; x = shots (``k`` images per class, ``all`` last, evenly spaced),
    y = the mean over tasks of the per-task seed means, one line per method."""
    if shots.empty or shots["mean"].isna().all():
        return None
    values = sorted(shots["shots"].unique(), key=shots_key)
    position = {k: i for i, k in enumerate(values)}
    bases = order_arms(shots["base"])
    colors = arm_styles(bases)
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    axes = fig.subplots(1, len(OUTCOMES))
    for ax, outcome in zip(axes, OUTCOMES, strict=True):
        mine = shots[shots["outcome"] == outcome]
        for base in bases:
            line = mine[mine["base"] == base].dropna(subset=["mean"])
            line = line.sort_values("shots", key=lambda s: s.map(shots_key))
            if line.empty:
                continue
            color, marker = colors[base]
            x = np.array([position[k] for k in line["shots"]])
            ax.plot(x, line["mean"], color=color, marker=marker, label=method_label(base))
        ax.axhline(0, color="0.6", lw=0.8, zorder=0)
        ax.set_xticks(range(len(values)), [str(k) for k in values])
        ax.set_xlabel("training images per class (k)")
        ax.set_title(f"{OUTCOME_LABELS[outcome]} against shots")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean over tasks (fine-tuned − zero-shot top-1)")
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes), key=lambda h: len(h[0]))
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncol=min(6, len(labels)))
    fig.suptitle("Limited data: outcomes against training images per class", fontsize=13)
    name = "outcomes_vs_shots.png"
    save(fig, out / name)
    return Plot(
        name,
        "Outcomes against shots",
        "Mean over tasks of each method's per-task seed mean at k training images per class "
        "(`all` = the full split); claims use only `all`.",
    )
