"""The report's figures, one module per subject, each ``plot_*`` drawing PNGs into the figures
directory and returning :class:`~clipgap.report.figures.canvas.Plot` records (none when the
study has no data for it, e.g. no DG domains). :func:`draw_figures` draws them all in the
report's order.

- :mod:`.canvas`: what every figure shares (``Plot``, method styles, PNG saving, task labels).
- :mod:`.gains`: difficulty vs in-domain gain, DG gain vs forgetting, outcomes vs shots.
- :mod:`.forgetting`: CF heatmaps per (fine-tuning task, control task).
- :mod:`.predictor_errors`: which difficulty measure predicts the outcomes (LOTO errors).
- :mod:`.frontier_curves`: gain against forgetting along interpolation.
- :mod:`.sensitivity`: a search's outcomes against the learning rate (search studies only).
"""

from __future__ import annotations

from pathlib import Path

from clipgap.report.analysis import Analysis
from clipgap.report.figures.canvas import Plot
from clipgap.report.figures.forgetting import plot_forgetting
from clipgap.report.figures.frontier_curves import plot_frontier
from clipgap.report.figures.gains import plot_difficulty, plot_shots, plot_tradeoff
from clipgap.report.figures.predictor_errors import plot_measures
from clipgap.report.figures.sensitivity import plot_sensitivity

__all__ = ["FIGURE_NAMES", "Plot", "draw_figures"]

# The figures drawn here whose stale copies this function removes (the frontier and measure
# figures remove their own).
FIGURE_NAMES = {
    "difficulty_vs_delta_id.png",
    "dg_vs_cf.png",
    "forgetting_heatmap.png",
    "forgetting_by_method.png",
    "outcomes_vs_shots.png",
}


def draw_figures(analysis: Analysis, out: Path) -> list[Plot]:
    """Every figure the study's data allow, written into ``out``; stale ones are removed."""
    plots = [
        plot_difficulty(analysis, out),
        plot_tradeoff(analysis.cells, analysis.methods, out),
        *plot_forgetting(analysis.forgetting, out),
        plot_shots(analysis.shots, out),
        plot_sensitivity(analysis.trials, out),
        *plot_measures(analysis.measures, out),
        *plot_frontier(analysis.frontier, out),
    ]
    plots = [p for p in plots if p is not None]
    drawn = {p.name for p in plots}
    for name in FIGURE_NAMES - drawn:
        (out / name).unlink(missing_ok=True)
    return plots
