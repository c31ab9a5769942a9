"""Claim 3: how the five paper methods trade in-domain and DG gains against forgetting.

Per claim group, over the tasks on which all five paper methods (full, A-CLIP, BitFit, LoRA,
CLIP-Adapter) have complete runs, each method's per-task value is its mean over seeds; rank
and sign statements are decided by paired tests across tasks (:mod:`.ranktests`), never by
comparing means with seed noise. Rank 1 is best: highest dID, highest dDG, highest CF (= least
forgetting).

- 3a: A-CLIP balances DG gains against CF: its balance score (per task, the mean of its dDG
  rank and CF rank among the five) is lower than each other method's.
- 3b: LoRA forgets least: its CF is higher than each other method's (its dDG rank is
  reported, not tested).
- 3c: BitFit is strong in-domain but forgets: top two by dID, and CF < 0.
- 3d: CLIP-Adapter and full fine-tuning improve DG at a cost in forgetting: dDG > 0 and
  CF < 0 for both.

A claim made of several statements combines them with :func:`.verdict.combine`; the level at
which a statement may refute it is the significance level divided by the number of statements.
"""

from __future__ import annotations

import pandas as pd

from clipgap.record import OUTCOME_LABELS, PAPER_METHODS
from clipgap.report.claims.ranktests import Part, compare_to_others, sign_of
from clipgap.report.claims.verdict import Claim, ClaimOptions, Status, combine, keyed
from clipgap.report.formatting import num, pval
from clipgap.report.labels import OUTCOMES, method_label
from clipgap.report.scopes import missing_methods
from clipgap.stats import friedman_test, signed_rank_min_n

STATEMENTS = {
    "3a": "A-CLIP balances DG gains against CF: per task, the mean of its dDG rank and CF rank "
    "among the five paper methods is lower than each other method's.",
    "3b": "LoRA forgets least: its CF is higher than each other paper method's.",
    "3c": "BitFit is strong in-domain but forgets: top two of the five by dID, and CF < 0.",
    "3d": "CLIP-Adapter and full fine-tuning improve DG at a cost in forgetting: dDG > 0 and "
    "CF < 0 for both.",
}


def claim_methods(
    cells: pd.DataFrame,
    groups: dict[str, dict[str, str]],
    opts: ClaimOptions,
    *,
    setting: str = "",
) -> list[Claim]:
    """Claims 3a-3d for each claim group of the study.

    ``cells``: per (task, arm), the seed means of dID, dDG and CF (``delta_id``, ``delta_dg``,
    ``cf``) and ``n_seeds``: the fine-tuned models' (alpha = 1, the paper's setting), or
    the outcomes at another point of each run, e.g. its selected interpolation weight
    (:mod:`clipgap.report.frontier`). ``setting`` names that point in each claim's key
    (``3a (selected α)``); empty for alpha = 1.
    """
    claims = []
    for group, arms in groups.items():
        claims.extend(_claims_for(cells, arms, group, opts, setting))
    return claims


def _claims_for(
    cells, arms: dict[str, str], group: str, opts: ClaimOptions, setting: str = ""
) -> list[Claim]:
    def verdict(key: str, status: Status, evidence: list[str]) -> Claim:
        name = keyed(key, group) + (f" ({setting})" if setting else "")
        return Claim(name, STATEMENTS[key], status, evidence)

    missing = missing_methods(arms)
    if missing:
        reason = f"No complete runs of {', '.join(method_label(m) for m in missing)}."
        return [verdict(key, Status.CANNOT_BE_TESTED, [reason]) for key in STATEMENTS]
    values = {o: _per_task(cells, arms, o) for o in OUTCOMES}
    n = len(values["delta_id"])
    scope = (
        f"Over the {n} tasks with all five paper methods (seed means per task; paired Wilcoxon "
        f"signed-rank tests across tasks need at least {signed_rank_min_n(opts.level)} tasks "
        "with the outcome defined)."
    )
    if cells.loc[cells["arm"].isin(arms.values()), "n_seeds"].max() < 2:
        scope += " One seed per run: seed spread is unknown and is not used as noise."
    tests = {"3a": _balance, "3b": _lora, "3c": _bitfit, "3d": _dg_at_cost}
    claims = []
    for key, test in tests.items():
        status, evidence = test(values, opts)
        claims.append(verdict(key, status, [scope, *evidence]))
    return claims


def _per_task(cells: pd.DataFrame, arms: dict[str, str], outcome: str) -> pd.DataFrame:
    """Rows = tasks with all five methods, columns = paper methods, values = seed means."""
    mine = cells[cells["arm"].isin(arms.values())]
    by_arm = {arm: method for method, arm in arms.items()}
    table = mine.pivot(index="unit", columns="arm", values=outcome).rename(columns=by_arm)
    complete = mine.groupby("unit")["arm"].nunique() == len(PAPER_METHODS)
    return table.loc[complete[complete].index, list(PAPER_METHODS)].sort_index()


def _ranking(table: pd.DataFrame, name: str) -> str:
    """``Mean CF over 6 tasks: LoRA -0.010 > A-CLIP -0.020 = ...`` (``=`` for exact ties)."""
    order = table.dropna().mean().sort_values(ascending=False, kind="stable")
    text, previous = "", None
    for method, value in order.items():
        if previous is not None:
            text += " = " if value == previous else " > "
        text += f"{method_label(method)} {num(value, signed=True)}"
        previous = value
    return f"Mean {name} over {len(table.dropna())} tasks (descriptive): {text}."


def _friedman(table: pd.DataFrame, name: str) -> str:
    table = table.dropna()
    stat, p = friedman_test(table.to_numpy())
    return (
        f"Friedman test that the five methods differ on {name} over {len(table)} tasks: "
        f"χ²(4) = {num(stat, 2)}, p = {pval(p)}."
    )


def _balance(values: dict, opts: ClaimOptions) -> tuple[Status, list[str]]:
    both = values["delta_dg"].notna().all(axis=1) & values["cf"].notna().all(axis=1)
    dg = values["delta_dg"][both].rank(axis=1, ascending=False)
    cf = values["cf"][both].rank(axis=1, ascending=False)
    score = (dg + cf) / 2
    part = compare_to_others(
        score, "aclip", what="Balance score (lower is better)", higher=False,
        level=opts.level, refute_level=opts.level,
    )  # fmt: skip
    means = "; ".join(f"{method_label(m)} {v:.2f}" for m, v in score.mean().items())
    return part.status, [
        _ranking(values["delta_dg"], "dDG"),
        _ranking(values["cf"], "CF"),
        f"Mean balance score over {len(score)} tasks with DG domains and controls: {means}.",
        _friedman(score, "balance score"),
        part.text,
    ]


def _lora(values: dict, opts: ClaimOptions) -> tuple[Status, list[str]]:
    part = compare_to_others(
        values["cf"], "lora", what="CF", level=opts.level, refute_level=opts.level
    )
    dg_rank = values["delta_dg"].dropna().mean().rank(ascending=False, method="min")
    rank = f"#{dg_rank['lora']:.0f} of 5" if len(dg_rank) else "undefined"
    return part.status, [
        _ranking(values["cf"], "CF"),
        _friedman(values["cf"], "CF"),
        part.text,
        f"LoRA's mean dDG ranks {rank} (reported, not tested).",
    ]


def _bitfit(values: dict, opts: ClaimOptions) -> tuple[Status, list[str]]:
    refute = opts.level / 2
    parts = [
        compare_to_others(
            values["delta_id"], "bitfit", what="dID (top two)", top=2,
            level=opts.level, refute_level=refute,
        ),
        sign_of(
            values["cf"]["bitfit"], expected=-1, what="BitFit CF",
            level=opts.level, refute_level=refute,
        ),
    ]  # fmt: skip
    return _combined(parts, [_ranking(values["delta_id"], "dID")])


def _dg_at_cost(values: dict, opts: ClaimOptions) -> tuple[Status, list[str]]:
    refute = opts.level / 4
    parts = []
    for method in ("clip_adapter", "full"):
        for outcome, expected in (("delta_dg", 1), ("cf", -1)):
            what = f"{method_label(method)} {OUTCOME_LABELS[outcome]}"
            series = values[outcome][method]
            parts.append(
                sign_of(series, expected=expected, what=what, level=opts.level, refute_level=refute)
            )
    return _combined(parts, [])


def _combined(parts: list[Part], lead: list[str]) -> tuple[Status, list[str]]:
    status = combine([p.status for p in parts])
    return status, [*lead, *(f"{p.text} → {p.status.value}." for p in parts)]
