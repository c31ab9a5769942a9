"""The limited-data figure: dID, dDG and CF against training images per class, per method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clipgap.report.labels import OUTCOME_NAMES, OUTCOMES, method_label, order_arms, shots_key
from clipgap.report.render.plots import Plot, arm_styles, save


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
        ax.set_title(f"{OUTCOME_NAMES[outcome]} against shots")
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
