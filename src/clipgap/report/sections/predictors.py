"""The measure-ranking section: which difficulty measure predicted each outcome best on this
study (:func:`clipgap.predict.compare_measures`), as one plain sentence per outcome and one
ranking table per outcome and preset (the figure is :mod:`clipgap.report.figures.predictor_errors`).
"""

from __future__ import annotations

from clipgap.predict import MeasureComparison
from clipgap.predict.honest import NestedQuality
from clipgap.predict.measures import percent_lower
from clipgap.record import OUTCOME_LABELS
from clipgap.report.figures.predictor_errors import figure_name
from clipgap.report.formats.blocks import Block, Bullets, Heading, Paragraph, Table
from clipgap.report.formatting import num, pval
from clipgap.report.measure_ranking import MeasureRanking

NESTED = (
    "**The verdict is nested.** Picking the measure with the lowest LOTO error and quoting that "
    "error flatters it. So, per outcome, the whole choice is redone inside each LOTO fold using "
    "only the other tasks: among every measure and ridge over every pair of measures, the "
    "predictor with the lowest LOTO error on those tasks predicts the held-out task. Its mean "
    "absolute error over tasks and methods (**nested error**) is set against a difficulty-free "
    "baseline chosen the same way (each method's mean, or a line on the number of classes or "
    "its log). A measure is said to beat the baseline only when a permutation test agrees: "
    "the difficulty values are shuffled across tasks, the whole nested procedure is rerun, and "
    "p is the share of shuffles (the real order counted as one) with a nested error at most "
    "the real one. The per-measure tables below are a description, not a verdict."
)
INTRO = (
    "For every difficulty measure, outcome and method, a least-squares line of the outcome on "
    "the measure over tasks (per-task seed means, full-data runs) is judged by its "
    "leave-one-task-out (LOTO) error: each task's outcome predicted by the line fitted on the "
    "other tasks, mean absolute error over tasks (lower is better). Measures are ranked per "
    "outcome by that error averaged over methods; **baseline** is the same error of a "
    "predictor that ignores difficulty (each method's mean outcome over the other tasks). "
    "R², Spearman ρ, Kendall τ and weighted τ (hyperbolic weights, as in arXiv 2407.15731) "
    "are in-sample, averaged over methods. **dID/(1-zs)** is the normalised gain: the share "
    "of the zero-shot error on the task that fine-tuning removed."
)
HEAD = ["rank", "measure", "LOTO error", "baseline", "below baseline", "R²", "Spearman ρ"]
HEAD += ["Kendall τ", "weighted τ", "methods", "tasks"]


def measures_section(rankings: list[MeasureRanking]) -> list[Block]:
    """The section: the method, one plain sentence per outcome saying which measure predicted
    it best and by how much, and one ranking table per outcome (per preset)."""
    blocks: list[Block] = [
        Heading("Which difficulty measure predicts the outcomes"),
        Paragraph(INTRO),
        Paragraph(NESTED),
    ]
    several = len(rankings) > 1
    for ranking in rankings:
        if several:
            blocks.append(Heading(f"Preset {ranking.preset}", 3))
        blocks += _ranking_blocks(ranking, several)
    return blocks


def _ranking_blocks(ranking: MeasureRanking, several: bool) -> list[Block]:
    comparison = ranking.comparison
    if comparison is None:
        return [Paragraph(f"Not computed: {ranking.why}.")]
    outcomes = comparison.outcomes()
    lead = (
        f"On this study (model `{comparison.model}`, preset `{comparison.preset}`, "
        f"{comparison.n_tasks} tasks; errors averaged over methods):"
    )
    if not outcomes:
        lead = f"{lead} no measure could be scored against any outcome."
    blocks: list[Block] = [Paragraph(lead)]
    if outcomes:
        blocks.append(Bullets([nested_bullet(comparison, o) for o in outcomes]))
        blocks.append(Paragraph("Per measure (not nested; a description):"))
        blocks.append(Bullets([best_sentence(comparison, o) for o in outcomes]))
    rows = ranking_rows(comparison)
    level = 4 if several else 3
    for outcome in outcomes:
        label = OUTCOME_LABELS[outcome]
        mine = [r for r in rows if r["outcome"] == label]
        heading = Heading(f"Predicting {label} (per measure, not nested)", level)
        blocks += [heading, Table(HEAD, [_row(r) for r in mine])]
    extra = _left_out(comparison)
    if outcomes:
        extra.append(f"Figure: `figures/{figure_name(ranking, several)}` (with the figures below).")
    return blocks + [Paragraph(" ".join(extra))] if extra else blocks


def nested_bullet(comparison: MeasureComparison, outcome: str) -> str:
    """The nested verdict on ``outcome``: the procedure's error, the baseline's, and p."""
    label = OUTCOME_LABELS[outcome]
    q = comparison.nested.get(outcome)
    if not isinstance(q, NestedQuality):
        return f"**{label}**: nested leave-one-task-out not computed ({q or 'no data'})."
    word = "beats" if q.beats_baseline else "does not beat"
    return (
        f"**{label}**: choosing among {q.n_candidates} predictors inside each fold gives nested "
        f"error {num(q.nested_mae, 4)} against {num(q.baseline_mae, 4)} without difficulty "
        f"(`{q.baseline}` on all tasks); it {word} the baseline (permutation p = "
        f"{pval(q.p_value)}, {q.permutations} shuffles). On all tasks it picks `{q.best}`; "
        f"LOTO coverage of its {q.interval:.0%} intervals: {q.coverage['ols']:.0%}."
    )


def best_sentence(comparison: MeasureComparison, outcome: str) -> str:
    """Which measure predicted ``outcome`` best, and by how much: its LOTO error against the
    runner-up's and against the baseline that ignores difficulty (relative differences)."""
    label = OUTCOME_LABELS[outcome]
    best, *rest = comparison.ranking(outcome)
    text = f"**{label}**: `{best.measure}` predicted best (LOTO error {num(best.loto_mae, 4)}"
    if rest:
        second = rest[0]
        text += (
            f", {percent_lower(best.loto_mae, second.loto_mae)} lower than the runner-up "
            f"`{second.measure}` at {num(second.loto_mae, 4)}"
        )
    base = best.baseline_mae
    if best.loto_mae < base:
        return (
            text + f"; {percent_lower(best.loto_mae, base)} lower than each method's mean, "
            f"{num(base, 4)}; chosen on these tasks, so not a verdict)."
        )
    return text + f"); not even below each method's mean ({num(base, 4)})."


def _left_out(comparison: MeasureComparison) -> list[str]:
    """Sentences on the measures and outcomes that were not scored, and why."""
    out = []
    missing = comparison.unavailable
    if missing:
        out.append("Not scored: " + "; ".join(f"`{m}` ({why})" for m, why in missing) + ".")
    scored = {OUTCOME_LABELS[o] for o in comparison.outcomes()}
    skipped: dict[str, str] = {}
    for note in comparison.notes:
        arm, _, rest = note.partition(" / ")
        label, _, why = rest.partition(": ")
        if label in scored:
            out.append(f"Skipped {note.partition(': ')[0]}: {why.removeprefix('skipped ')}.")
        else:
            skipped.setdefault(label, why.removeprefix("skipped "))
    out += [f"{label} not scored for any method {why}." for label, why in skipped.items()]
    return out


def _row(r: dict) -> list[str]:
    return [
        str(r["rank"]),
        f"`{r['measure']}`",
        num(r["loto_mae"], 4),
        num(r["baseline_mae"], 4),
        "yes" if r["loto_mae"] < r["baseline_mae"] else "no",
        num(r["r2"], 2),
        num(r["spearman"], 2, signed=True),
        num(r["kendall"], 2, signed=True),
        num(r["weighted_tau"], 2, signed=True),
        str(r["methods"]),
        str(r["tasks"]),
    ]


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
                    "below_baseline": rank.loto_mae < rank.baseline_mae,
                    "r2": _mean(a.r2 for a in stats),
                    "spearman": _mean(a.spearman for a in stats),
                    "kendall": _mean(a.kendall for a in stats),
                    "weighted_tau": _mean(a.weighted_tau for a in stats),
                    "methods": rank.n_methods,
                    "tasks": rank.n_tasks,
                }
            )
    return rows


def _mean(values) -> float:
    values = [v for v in values if v == v]  # drop NaN
    return sum(values) / len(values) if values else float("nan")
