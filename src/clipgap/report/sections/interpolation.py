"""The frontier section: gain against forgetting along interpolation, each method's alpha chosen
on validation data, claim 3 at alpha = 1 and at the chosen alphas, and how the frontier's
shape relates to task difficulty (:mod:`clipgap.report.frontier`)."""

from __future__ import annotations

import pandas as pd

from clipgap.report.claims import Claim
from clipgap.report.formats.blocks import Block, Bullets, Heading, Paragraph, Table
from clipgap.report.formatting import MISSING, num, pval
from clipgap.report.frontier import FOOTING, GAIN_FRACTION, SELECTION_RULE, SETTING, Frontier
from clipgap.report.labels import OUTCOMES, method_label, order_arms


def _alphas(values) -> str:
    return ", ".join(f"{a:g}" for a in values)


def frontier_section(frontier: Frontier | None, claims: list[Claim]) -> list[Block]:
    """The section (nothing when no run was scored along alpha). ``claims``: the report's
    claims, whose claim 3 (alpha = 1) is set beside claim 3 at the selected alphas."""
    if frontier is None:
        return []
    n_runs = frontier.points["run_id"].nunique()
    intro = (
        f"{n_runs} runs were also scored at the interpolation weights α = "
        f"{_alphas(frontier.alphas)} between the zero-shot model (α = 0) and the fine-tuned one "
        "(α = 1), same weights for every method (WiSE-FT; docs/science.md, *Interpolation*); "
        "outcomes at α are against the same zero-shot scores as at α = 1. Where α = 0 or 1 "
        "was not scored the curve ends at the definitions (no change; the fine-tuned scores). "
        f"**Selection rule**: {SELECTION_RULE}; {FOOTING[frontier.equal_footing]}. Figures "
        "*Frontier along interpolation* below."
    )
    blocks: list[Block] = [Heading("Gain against forgetting along interpolation"), Paragraph(intro)]
    blocks += _selection_blocks(frontier)
    blocks += _claim_blocks(frontier, claims)
    blocks += _difficulty_blocks(frontier)
    return blocks


def _selection_blocks(frontier: Frontier) -> list[Block]:
    selected = frontier.selected
    if selected.empty:
        return [Paragraph("No run has a validation split: no alpha can be selected.")]
    arms = order_arms(frontier.points["arm"])
    units = sorted(frontier.points["unit"].unique())
    chosen = selected.groupby(["unit", "arm"])["alpha"].agg(lambda s: _alphas(sorted(set(s))))
    rows = [[f"`{u}`"] + [chosen.get((u, a), MISSING) for a in arms] for u in units]
    head = ["task", *(method_label(a, mark=True) for a in arms)]
    summary = []
    for arm in arms:
        mine = selected[selected["arm"] == arm]
        one = frontier.points[(frontier.points["arm"] == arm) & (frontier.points["alpha"] == 1.0)]
        cells = frontier.cells[frontier.cells["arm"] == arm]
        units_one = one.groupby("unit")[list(OUTCOMES)].mean()
        summary.append(
            [method_label(arm, mark=True), str(len(cells)), num(mine["alpha"].mean(), 2)]
            + [f"{num(units_one[o].mean(), signed=True)} → {num(cells[o].mean(), signed=True)}"
               for o in OUTCOMES]
        )  # fmt: skip
    return [
        Heading("Selected α per task and method", 3),
        Paragraph("Each cell: the α each seed's run selected on its validation split."),
        Table(head, rows),
        Heading("Outcomes at α = 1 and at the selected α", 3),
        Paragraph(
            "Mean over tasks of the per-task seed means: at α = 1 (the fine-tuned model, the "
            "paper's setting) → at each run's selected α."
        ),
        Table(["method", "tasks", "mean selected α", "dID", "dDG", "CF"], summary),
    ]


def _claim_blocks(frontier: Frontier, claims: list[Claim]) -> list[Block]:
    at_one = {c.key: c for c in claims if c.key.startswith("3")}
    rows, changed = [], []
    for claim in frontier.claims:
        key = claim.key.removesuffix(f" ({SETTING})")
        before = at_one.get(key)
        was = before.status.value if before else MISSING
        rows.append([key, was, claim.status.value])
        if before and before.status != claim.status:
            changed.append(f"{key} ({was} → {claim.status.value})")
    verdict = (
        "The tests come out differently at the selected alphas for " + "; ".join(changed) + "."
        if changed
        else "The tests come out the same when every method may use its selected α."
    )
    blocks: list[Block] = [
        Heading("Claim 3's tests at the selected α (exploratory)", 3),
        Paragraph(
            "Exploratory, not a verdict: claim 3 is decided at one pre-stated setting, α = 1 "
            "(the claims above). The same tests on per-task seed means of the outcomes at each "
            f"run's selected α instead; {FOOTING[frontier.equal_footing]}. {verdict}"
        ),
        Table(["claim", "verdict at α = 1", "test at selected α (exploratory)"], rows),
    ]
    return blocks + [
        Paragraph(
            f"*{c.key}, exploratory*: the test gives {c.status.value}. {' '.join(c.evidence)}"
        )
        for c in frontier.claims
    ]


def _difficulty_blocks(frontier: Frontier) -> list[Block]:
    at_gain, relations = frontier.at_gain, frontier.relations
    pct = f"{100 * GAIN_FRACTION:g}%"
    rows = []
    for r in relations.to_dict("records"):
        mine = at_gain[at_gain["arm"] == r["arm"]].dropna(subset=["cf_half"])
        rows.append(
            [
                method_label(r["arm"], mark=True),
                str(len(mine)),
                num(mine["alpha_half"].mean(), 2),
                num(mine["cf_half"].mean(), signed=True),
                num(mine["cf_end"].mean(), signed=True),
                num(r["spearman_rho"], 2, signed=True),
                pval(r["spearman_p"]),
            ]
        )
    head = ["method", "tasks", f"α at {pct} dID", f"CF at {pct} dID", "CF at α = 1"]
    head += ["Spearman ρ(ss, CF)", "p"]
    return [
        Heading("Frontier shape and task difficulty", 3),
        Paragraph(
            f"Per task and method, the CF paid for {pct} of the in-domain gain: the curve is "
            f"followed from α = 0 to where dID first reaches {pct} of its α = 1 value (linear "
            "between scored alphas) and CF is read there; undefined where fine-tuning did not "
            "gain (dID(1) ≤ 0). A curve that bows towards no forgetting pays little CF for the "
            "first half of the gain. ρ relates that CF to the task's ss across tasks (exact "
            "permutation p up to 9 tasks): negative ρ = more misaligned tasks forget more for "
            "the same share of their gain."
        ),
        Table(head, rows),
        Bullets(_strongest(relations)),
    ]


def _strongest(relations: pd.DataFrame) -> list[str]:
    finite = relations.dropna(subset=["spearman_rho"])
    if finite.empty:
        return ["No method has CF at that gain on at least 3 tasks with varying values."]
    top = finite.loc[finite["spearman_rho"].abs().idxmax()]
    return [
        f"Strongest relation: {method_label(top['arm'])}, ρ = "
        f"{num(top['spearman_rho'], 2, signed=True)} over {int(top['n'])} tasks "
        f"(p = {pval(top['spearman_p'])}; descriptive, not corrected for the "
        f"{len(finite)} methods)."
    ]
