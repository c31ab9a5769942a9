"""Report-ready rows (lists of plain dicts) for the measure comparison, and its ranking figure.

The figure is drawn on matplotlib's Agg canvas through :class:`matplotlib.figure.Figure`, with no
pyplot state; the caller saves it (``fig.savefig(path)``) where its report wants it.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from clipgap.predict.measures import MeasureComparison
from clipgap.predict.table import OUTCOME_LABELS

# PNG metadata that varies between matplotlib versions is dropped, so reruns give the same bytes.
PNG_METADATA = {"Software": None}


def ranking_rows(comparison: MeasureComparison) -> list[dict]:
    """One row per (outcome, measure), best first within each outcome: LOTO mean absolute error
    averaged over methods, the baseline's, and the mean rank correlations over methods."""
    rows = []
    for outcome in comparison.outcomes():
        for rank in comparison.ranking(outcome):
            stats = [
                s.stats
                for s in comparison.scores
                if s.outcome == outcome
                and s.measure == rank.measure
                and s.method in comparison.methods
            ]
            rows.append(
                {
                    "outcome": OUTCOME_LABELS[outcome],
                    "rank": rank.rank,
                    "measure": rank.measure,
                    "loto_mae": rank.loto_mae,
                    "baseline_mae": rank.baseline_mae,
                    "beats_baseline": rank.loto_mae < rank.baseline_mae,
                    "r2": _mean(a.r2 for a in stats),
                    "spearman": _mean(a.spearman for a in stats),
                    "kendall": _mean(a.kendall for a in stats),
                    "weighted_tau": _mean(a.weighted_tau for a in stats),
                    "methods": rank.n_methods,
                    "tasks": rank.n_tasks,
                }
            )
    return rows


def score_rows(comparison: MeasureComparison) -> list[dict]:
    """One row per (measure, outcome, method or pooled arm) with every statistic."""
    return [
        {
            "measure": s.measure,
            "outcome": OUTCOME_LABELS[s.outcome],
            "method": s.method,
            "tasks": s.stats.n,
            "loto_mae": s.stats.loto_mae,
            "baseline_mae": s.stats.baseline_mae,
            "r2": s.stats.r2,
            "spearman": s.stats.spearman,
            "kendall": s.stats.kendall,
            "weighted_tau": s.stats.weighted_tau,
            "slope": s.stats.slope,
        }
        for s in comparison.scores
    ]


def unavailable_rows(comparison: MeasureComparison) -> list[dict]:
    return [{"measure": m, "why": why} for m, why in comparison.unavailable]


def _mean(values) -> float:
    values = [v for v in values if v == v]  # drop NaN
    return sum(values) / len(values) if values else float("nan")


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


def save_measure_ranking(comparison: MeasureComparison, path: str | Path, *, dpi: int = 120):
    """Draw :func:`measure_ranking_figure` into ``path`` (PNG); returns the path or None."""
    fig = measure_ranking_figure(comparison)
    if fig is None:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, metadata=PNG_METADATA)
    return path
