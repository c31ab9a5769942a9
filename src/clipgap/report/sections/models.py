"""The cross-model section of a study over several models: which models, and when they form a
dial (:mod:`clipgap.report.dial`), "Measures against known misalignment" with its figure."""

from __future__ import annotations

from pathlib import Path

from clipgap.record import OUTCOME_LABELS
from clipgap.report.dial import DIAL_MEASURES, DialAnalysis
from clipgap.report.figures.canvas import Plot, arm_styles, save
from clipgap.report.formats.blocks import Block, Heading, Image, Paragraph, Table
from clipgap.report.formatting import MISSING, num
from clipgap.report.labels import MEASURE_NAMES, OUTCOMES, method_label, order_arms

DIAL_FIGURE = "dial_outcomes.png"


def cross_model_section(
    models: list[str], dial: DialAnalysis | None, plot: Plot | None, *, figures: str
) -> list[Block]:
    """The section after the per-model ones."""
    blocks: list[Block] = [Heading("Across models", 2)]
    listing = ", ".join(f"`{m}`" for m in models)
    if dial is None:
        return blocks + [
            Paragraph(
                f"Models ({len(models)}): {listing}. They do not differ in exactly one numeric "
                "world setting, so no dial is read across them; each model's sections above "
                "stand alone."
            )
        ]
    d = dial.dial
    values = ", ".join(f"{v:g}" for v in sorted(d.values.values()))
    blocks += [
        Heading("Measures against known misalignment", 3),
        Paragraph(
            f"The {len(models)} models differ only in `{d.key}` ({values}): the known "
            f"misalignment of `{d.attribute}`. Per task, Kendall τ of each difficulty measure "
            "(measured on the task under each model) with the dial value; τ = +1: the measure "
            "rises with every step of the dial. The paper's reading expects, for tasks that use "
            f"`{d.attribute}`, more mentions = better aligned = lower ss (τ < 0) and higher ACS "
            "and zero-shot accuracy (τ > 0); tasks that do not use it are controls for the dial."
        ),
        _measure_table(dial),
        Paragraph(_claim_text(dial)),
        Heading("Outcomes against the dial", 4),
        Paragraph(
            f"Per method (paper methods, all training images): each outcome's mean over the "
            f"tasks that use `{d.attribute}` at each dial value, and Kendall τ of those means "
            "with the dial."
        ),
        _outcome_table(dial),
    ]
    if plot is not None:
        blocks.append(Image(f"{figures}/{plot.name}", plot.title, plot.caption))
    return blocks


def _measure_table(dial: DialAnalysis) -> Table:
    head = ["task", "uses dial", "levels", *(f"τ {MEASURE_NAMES[m]}" for m in DIAL_MEASURES)]
    rows = [
        [f"`{r['task']}`", "yes" if r["uses"] else "no", str(r["levels"])]
        + [num(r[m], 2, signed=True) for m in DIAL_MEASURES]
        for r in dial.measures.to_dict("records")
    ]
    return Table(head, rows)


def _claim_text(dial: DialAnalysis) -> str:
    c = dial.claim
    if c["n"] == 0:
        return f"Claim 1, ground truth: {MISSING} (no task using the dial's attribute)."
    n = c["n"]
    follows = "ss" if c["ss_abs"] > c["acs_abs"] else "ACS" if c["acs_abs"] > c["ss_abs"] else None
    verdict = f"{follows} follows the dial more closely" if follows else "neither follows it more"
    return (
        f"**Claim 1, ground-truth reading** (does ss follow the dial better than ACS?), over the "
        f"{n} tasks that use `{dial.dial.attribute}`: mean |τ| of ss {num(c['ss_abs'], 2)}, of "
        f"ACS {num(c['acs_abs'], 2)} ({verdict}); |τ(ss)| > |τ(ACS)| on {c['ss_better']} of "
        f"{n} tasks, the reverse on {c['acs_better']}. Mean τ of ss "
        f"{num(c['ss_mean'], 2, signed=True)} (the reading expects < 0; {c['ss_expected']} of "
        f"{n} tasks have that sign), of ACS {num(c['acs_mean'], 2, signed=True)} (expects > 0; "
        f"{c['acs_expected']} of {n}). Descriptive: with {len(dial.dial.values)} dial levels "
        "per task no τ here is a significance test."
    )


def _outcome_table(dial: DialAnalysis) -> Table:
    means, trend = dial.outcomes, dial.trend
    values = sorted(means["value"].unique())
    head = ["method", "outcome", *(f"{v:g}" for v in values), "τ with dial"]
    rows = []
    for arm in order_arms(means["method"]):
        for o in OUTCOMES:
            part = means[(means["method"] == arm) & (means["outcome"] == o)]
            if part["mean"].isna().all():
                continue
            at = dict(zip(part["value"], part["mean"], strict=True))
            tau = trend[(trend["method"] == arm) & (trend["outcome"] == o)]["tau"]
            rows.append(
                [method_label(arm), OUTCOME_LABELS[o]]
                + [num(at.get(v, float("nan")), 3, signed=True) for v in values]
                + [num(tau.iloc[0] if len(tau) else float("nan"), 2, signed=True)]
            )
    return Table(head, rows)


def plot_dial(dial: DialAnalysis | None, out: Path) -> Plot | None:
    """One panel per outcome: x = dial value, one line per method (mean over the tasks that
    use the dialled attribute)."""
    if dial is None or dial.outcomes.empty:
        return None
    from matplotlib.figure import Figure

    means = dial.outcomes
    outcomes = [o for o in OUTCOMES if means.loc[means["outcome"] == o, "mean"].notna().any()]
    arms = order_arms(means["method"])
    styles = arm_styles(arms)
    fig = Figure(figsize=(4.2 * len(outcomes), 3.6))
    for i, o in enumerate(outcomes):
        ax = fig.add_subplot(1, len(outcomes), i + 1)
        for arm in arms:
            part = means[(means["method"] == arm) & (means["outcome"] == o)].sort_values("value")
            color, marker = styles[arm]
            ax.plot(part["value"], part["mean"], marker=marker, color=color,
                    label=method_label(arm))  # fmt: skip
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xscale("symlog", linthresh=0.01)
        top = float(means["value"].max())
        ax.set_xlim(-0.002, top * 1.3 if top > 0 else 1.0)
        ax.set_xlabel(dial.dial.key)
        ax.set_ylabel(OUTCOME_LABELS[o])
        ax.set_title(OUTCOME_LABELS[o])
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    save(fig, out / DIAL_FIGURE)
    n = int(means["n_tasks"].max())
    return Plot(
        DIAL_FIGURE,
        "Outcomes against the dial",
        f"Each method's mean outcome over the {n} tasks using `{dial.dial.attribute}`, at each "
        f"value of `{dial.dial.key}` (symmetric log axis).",
    )
