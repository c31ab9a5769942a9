"""The search's sensitivity figure: each trial's in-domain gain and validation accuracy against
its learning rate (log scale), one colour per method, one thin line per task x method x seed
through its trials, the selected trial ringed in black."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from clipgap.report.figures.canvas import Plot, arm_styles, save, short_names
from clipgap.report.labels import method_label, order_arms

NAME = "search_sensitivity.png"
PANELS = (("delta_id", "dID = fine-tuned − zero-shot top-1 (test)"),
          ("val_accuracy", "validation accuracy (selects the trial)"))  # fmt: skip


def plot_sensitivity(trials: pd.DataFrame | None, out: Path) -> Plot | None:
    """Two panels (dID, validation accuracy) against the learning rate; None without a search
    or when no trial has a positive learning rate."""
    if trials is None:
        (out / NAME).unlink(missing_ok=True)
        return None
    trials = trials[trials["lr"] > 0]
    if trials.empty:
        (out / NAME).unlink(missing_ok=True)
        return None
    arms = order_arms(trials["arm"])
    style = arm_styles(arms)
    names = short_names(trials["unit"])
    fig = Figure(figsize=(12, 5.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (outcome, label) in zip(axes, PANELS, strict=True):
        for arm in arms:
            color, marker = style[arm]
            mine = trials[trials["arm"] == arm]
            for (unit, _), line in mine.groupby(["unit", "seed"], sort=True):
                line = line.sort_values("lr")
                ax.plot(line["lr"], line[outcome], color=color, lw=0.8, alpha=0.45)
                end = line.iloc[-1]
                ax.annotate(f" {names[unit]}", (end["lr"], end[outcome]), fontsize=7,
                            color=color, alpha=0.8)  # fmt: skip
            ax.scatter(mine["lr"], mine[outcome], color=color, marker=marker, s=30, alpha=0.85,
                       label=method_label(arm))  # fmt: skip
            best = mine[mine["selected"]]
            ax.scatter(best["lr"], best[outcome], facecolors="none", edgecolors="black", s=110,
                       lw=1.2, marker="o")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        if outcome == "delta_id":
            ax.axhline(0, color="0.6", lw=0.8, zorder=0)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle("Search: outcome against learning rate, per method", fontsize=13)
    save(fig, out / NAME)
    return Plot(
        NAME,
        "Search sensitivity",
        "One point per trial (every trial of the search, selected or not); a thin line joins "
        "the trials of one task x method x seed in order of learning rate, named by its task at "
        "its right end. Black rings: the selected trial (best validation accuracy). Left: the "
        "test-split gain dID, which never takes part in the selection; right: the validation "
        "accuracy that does.",
    )
