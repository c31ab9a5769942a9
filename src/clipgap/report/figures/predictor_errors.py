"""The measure-ranking figure: per outcome, each difficulty measure's leave-one-task-out error
as a horizontal bar (best at the top) against the baseline that ignores difficulty, one file
per preset (:func:`clipgap.predict.compare_measures`, :mod:`clipgap.report.measure_ranking`)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from clipgap.predict import MeasureComparison
from clipgap.record import OUTCOME_LABELS
from clipgap.report.figures.canvas import Plot, save
from clipgap.report.measure_ranking import MeasureRanking

FIGURE = "measure_ranking"


def figure_name(ranking: MeasureRanking, several: bool) -> str:
    """The figure's file name: one per preset when the study has several."""
    return f"{FIGURE}_{ranking.preset}.png" if several else f"{FIGURE}.png"


def plot_measures(rankings: list[MeasureRanking], out: Path) -> list[Plot]:
    """One bar chart of LOTO errors per preset that has a comparison; stale ones are removed."""
    several = len(rankings) > 1
    plots = []
    for stale in out.glob(f"{FIGURE}*.png"):
        stale.unlink()
    for ranking in rankings:
        if ranking.comparison is None:
            continue
        name = figure_name(ranking, several)
        fig = measure_ranking_figure(ranking.comparison)
        if fig is None:
            continue
        save(fig, out / name)
        which = f" (preset {ranking.preset})" if several else ""
        plots.append(
            Plot(
                name,
                f"Which measure predicts the outcomes{which}",
                "Per outcome, each difficulty measure's leave-one-task-out mean absolute error "
                "of a least-squares line (mean over methods; best at the top); dashed: the "
                "baseline that ignores difficulty; blue bars lie below it (per measure, not nested: a "
                "description, not the verdict).",
            )
        )
    return plots


def measure_ranking_figure(comparison: MeasureComparison) -> Figure | None:
    """One panel per outcome: measures as horizontal bars of LOTO mean absolute error (best at
    the top), with the difficulty-free baseline as a dashed line. None when nothing was scored."""
    outcomes = comparison.outcomes()
    if not outcomes:
        return None
    n_measures = max(len(comparison.ranking(o)) for o in outcomes)
    fig = Figure(figsize=(4.2 * len(outcomes), 1.2 + 0.38 * n_measures), layout="constrained")
    axes = fig.subplots(1, len(outcomes), squeeze=False)[0]
    for ax, outcome in zip(axes, outcomes, strict=True):
        ranking = comparison.ranking(outcome)
        names = [r.measure for r in ranking][::-1]
        errors = [r.loto_mae for r in ranking][::-1]
        colors = ["tab:blue" if r.loto_mae < r.baseline_mae else "tab:gray" for r in ranking][::-1]
        ax.barh(names, errors, color=colors)
        base = ranking[0].baseline_mae
        ax.axvline(base, color="black", ls="--", lw=1, label=f"no difficulty ({base:.3f})")
        ax.set_title(f"predicting {OUTCOME_LABELS[outcome]}")
        ax.set_xlabel("LOTO mean absolute error\n(mean over methods)")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"Which difficulty measure predicts the outcome: leave-one-task-out error of a "
        f"least-squares line ({comparison.model}, {comparison.preset}, {comparison.n_tasks} "
        f"tasks; blue = below the baseline; per measure, not nested)",
        fontsize=11,
    )
    return fig
