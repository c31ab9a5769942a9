"""Claim 3: how the five paper methods trade in-domain and DG gains against forgetting.

Only tasks on which all five paper methods (full, A-CLIP, BitFit, LoRA, CLIP-Adapter) have
complete runs count. A method's score on an outcome is the mean over those tasks of its per-task
seed mean; its noise is the pooled seed std (root mean over tasks of the seed variance; 0 with a
single seed). Rank 1 is best: highest dID, highest dDG, highest CF (= least forgetting). A mean
counts as positive or negative only when its magnitude exceeds its noise.

- 3a: A-CLIP's balance score (mean of its dDG rank and CF rank) is strictly the best of the five.
- 3b: LoRA has the highest mean CF of the five (its dDG rank is reported, not tested).
- 3c: BitFit is among the top two by mean dID and its mean CF is negative.
- 3d: CLIP-Adapter and full both have a positive mean dDG and a negative mean CF.

With several presets in a study, each preset is tested on its own.
"""

from __future__ import annotations

import math

import pandas as pd

from clipgap.record import PAPER_METHODS
from clipgap.report.claims.verdict import Claim, ClaimOptions, Status, too_few
from clipgap.report.formatting import mean_pm, num
from clipgap.report.labels import method_label
from clipgap.stats import pooled_std

STATEMENTS = {
    "3a": "A-CLIP balances DG gains against CF: best mean of its dDG rank and CF rank among "
    "the five paper methods.",
    "3b": "LoRA forgets least: highest mean CF among the five paper methods.",
    "3c": "BitFit is strong in-domain but forgets: top two by mean dID, and mean CF < 0.",
    "3d": "CLIP-Adapter and full fine-tuning improve DG at a cost in forgetting: mean dDG > 0 "
    "and mean CF < 0 for both.",
}
NEEDS = {"3a": ("delta_dg", "cf_mean"), "3b": ("cf_mean",), "3c": ("delta_id", "cf_mean")}
NEEDS["3d"] = ("delta_dg", "cf_mean")
SYMBOL = {"delta_id": "dID", "delta_dg": "dDG", "cf_mean": "CF"}


def claim_methods(cells: pd.DataFrame, opts: ClaimOptions) -> list[Claim]:
    """Claims 3a-3d for each preset of the study (one set when the study has one preset)."""
    groups: dict[str, dict[str, str]] = {}
    for arm in sorted(cells["arm"].unique()):
        method, _, preset = arm.partition("/")
        if method in PAPER_METHODS:
            groups.setdefault(preset, {})[method] = arm
    claims = []
    for preset, arms in sorted((groups or {"": {}}).items()):
        claims.extend(_claims_for(cells, arms, preset, opts))
    return claims


def _claims_for(cells, arms: dict[str, str], preset: str, opts: ClaimOptions) -> list[Claim]:
    def verdict(key: str, status: str, evidence: list[str]) -> Claim:
        label = f"{key} [{preset}]" if preset else key
        return Claim(label, STATEMENTS[key], status, evidence)

    missing = [method_label(m) for m in PAPER_METHODS if m not in arms]
    if missing:
        reason = f"No complete runs of {', '.join(missing)}."
        return [verdict(key, Status.CANNOT_BE_TESTED, [reason]) for key in STATEMENTS]
    mine = cells[cells["arm"].isin(arms.values())]
    counts = mine.groupby("unit")["arm"].nunique()
    common = sorted(counts[counts == len(PAPER_METHODS)].index)
    if len(common) < opts.min_rank_tasks:
        reason = too_few(len(common), opts.min_rank_tasks, "tasks with all five paper methods")
        return [verdict(key, Status.CANNOT_BE_TESTED, [reason]) for key in STATEMENTS]
    summary = _summary(mine[mine["unit"].isin(common)], arms)
    scope = f"Over the {len(common)} tasks with all five paper methods."
    for outcome, name in SYMBOL.items():
        defined = int(summary[f"{outcome}_n"].min())
        if 0 < defined < len(common):
            scope += f" {name} is defined on {defined} of them."
    if mine["n_seeds"].max() < 2:
        scope += " One seed per run: no seed noise to compare signs against."
    tests = {"3a": _balance, "3b": _lora, "3c": _bitfit, "3d": _dg_at_cost}
    claims = []
    for key, test in tests.items():
        short = [o for o in NEEDS[key] if summary[f"{o}_n"].min() < opts.min_rank_tasks]
        if short:
            names = ", ".join(SYMBOL[o] for o in short)
            reason = f"{names} defined on too few of the common tasks (no DG domains or controls?)"
            claims.append(verdict(key, Status.CANNOT_BE_TESTED, [scope, reason + "."]))
            continue
        status, evidence = test(summary)
        claims.append(verdict(key, status, [scope, *evidence]))
    return claims


def _summary(cells: pd.DataFrame, arms: dict[str, str]) -> pd.DataFrame:
    """Index = paper method; per outcome the mean over tasks, noise, and number of tasks."""
    rows = {}
    for method in PAPER_METHODS:
        mine = cells[cells["arm"] == arms[method]]
        row = {}
        for outcome in SYMBOL:
            means = mine[outcome].dropna()
            stds, seeds = mine.loc[means.index, f"{outcome}_std"], mine.loc[means.index, "n_seeds"]
            row[outcome] = float(means.mean()) if len(means) else math.nan
            row[f"{outcome}_noise"] = pooled_std(stds, seeds)
            row[f"{outcome}_n"] = len(means)
        rows[method] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _ranks(summary: pd.DataFrame, outcome: str) -> pd.Series:
    return summary[outcome].rank(ascending=False, method="min")


def _ranking(summary: pd.DataFrame, outcome: str) -> str:
    """``Mean CF: LoRA -0.010 > A-CLIP -0.020 = BitFit -0.020 > ...`` (``=`` for exact ties)."""
    order = summary[outcome].sort_values(ascending=False, kind="stable")
    text, previous = "", None
    for method, value in order.items():
        if previous is not None:
            text += " = " if value == previous else " > "
        text += f"{method_label(method)} {num(value, signed=True)}"
        previous = value
    return f"Mean {SYMBOL[outcome]}: {text}."


def _sign(summary: pd.DataFrame, method: str, outcome: str) -> int:
    """+1 / -1 when the mean is beyond its seed noise (or nonzero without one), else 0."""
    mean, noise = summary.at[method, outcome], summary.at[method, f"{outcome}_noise"]
    return 0 if abs(mean) <= (noise if math.isfinite(noise) else 0.0) else (1 if mean > 0 else -1)


def _describe(summary: pd.DataFrame, method: str, outcome: str, *, name: bool = True) -> str:
    mean, noise = summary.at[method, outcome], summary.at[method, f"{outcome}_noise"]
    sign = _sign(summary, method, outcome)
    word = {1: "positive", -1: "negative", 0: "zero" if mean == 0 else "within seed noise"}[sign]
    text = f"{SYMBOL[outcome]} {mean_pm(mean, noise)} ({word})"
    return f"{method_label(method)} {text}" if name else text


def _balance(summary: pd.DataFrame) -> tuple[str, list[str]]:
    dg, cf = _ranks(summary, "delta_dg"), _ranks(summary, "cf_mean")
    score = (dg + cf) / 2
    best = score.min()
    winners = [m for m in PAPER_METHODS if score[m] == best]
    status = Status.HOLDS if winners == ["aclip"] else Status.DOES_NOT_HOLD
    parts = [
        f"{method_label(m)} {score[m]:.1f} (dDG #{dg[m]:.0f}, CF #{cf[m]:.0f})" for m in score.index
    ]
    best_text = " and ".join(method_label(m) for m in winners)
    return status, [
        _ranking(summary, "delta_dg"),
        _ranking(summary, "cf_mean"),
        f"Balance score (mean rank, lower is better): {'; '.join(parts)}.",
        f"Best balance: {best_text}{' (tied)' if len(winners) > 1 else ''}.",
    ]


def _lora(summary: pd.DataFrame) -> tuple[str, list[str]]:
    cf, dg = _ranks(summary, "cf_mean"), _ranks(summary, "delta_dg")
    tied = [method_label(m) for m in cf.index if m != "lora" and cf[m] == cf["lora"]]
    unique_best = cf["lora"] == 1 and not tied
    ties = f" (tied with {', '.join(tied)})" if tied else ""
    return Status.HOLDS if unique_best else Status.DOES_NOT_HOLD, [
        _ranking(summary, "cf_mean"),
        f"LoRA ranks #{cf['lora']:.0f} of 5 on CF{ties} and #{dg['lora']:.0f} of 5 on dDG.",
    ]


def _bitfit(summary: pd.DataFrame) -> tuple[str, list[str]]:
    rank = _ranks(summary, "delta_id")["bitfit"]
    forgets = _sign(summary, "bitfit", "cf_mean") < 0
    status = Status.HOLDS if rank <= 2 and forgets else Status.DOES_NOT_HOLD
    return status, [
        _ranking(summary, "delta_id"),
        f"BitFit ranks #{rank:.0f} of 5 on dID; {_describe(summary, 'bitfit', 'cf_mean')}.",
    ]


def _dg_at_cost(summary: pd.DataFrame) -> tuple[str, list[str]]:
    evidence, ok = [], True
    for method in ("clip_adapter", "full"):
        ok &= _sign(summary, method, "delta_dg") > 0 and _sign(summary, method, "cf_mean") < 0
        dg = _describe(summary, method, "delta_dg")
        evidence.append(f"{dg}; {_describe(summary, method, 'cf_mean', name=False)}.")
    return Status.HOLDS if ok else Status.DOES_NOT_HOLD, evidence
