"""The cross-model analysis of a study over several models, and the dial reading of it.

When a study's models are world variants that differ in exactly one dial (``world:KEY=VALUE``,
the same KEY, numeric values), :func:`dial_of` names it; :func:`dial_analysis` then asks, per
task, which difficulty measure orders the models as the dial does (Kendall tau with the dial
value), how each method's outcomes move with the dial (mean over the tasks whose labels use the
dialled attribute), and claim 1's ground-truth reading: does ss follow the dial better than ACS?
A mention rate's paper reading: more mentions = better aligned = lower ss and higher ACS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clipgap.record import OUTCOMES, PAPER_METHODS, RunRecord
from clipgap.stats import relate

DIAL_MEASURES = ("silhouette_modality", "acs", "zero_shot_accuracy", "silhouette_class")
# The sign of tau(measure, mention rate) that "more mentions = better aligned" expects.
EXPECTED_SIGN = {"silhouette_modality": -1, "acs": 1, "zero_shot_accuracy": 1}


@dataclass(frozen=True)
class Dial:
    """The one setting the study's models differ in: ``key`` (dotted, e.g.
    ``mention_rates.texture``) and each model's value."""

    key: str
    values: dict[str, float]

    @property
    def attribute(self) -> str:
        """The attribute the dial is about (the key's last part: ``texture``)."""
        return self.key.rpartition(".")[2]


def _setting(model: str) -> tuple[str, float] | None:
    """``world:a.b=0.1`` -> ``("a.b", 0.1)``; None when not one numeric KEY=VALUE."""
    scheme, colon, rest = model.partition(":")
    if not colon or not scheme.startswith("world") or "," in rest or "=" not in rest:
        return None
    key, _, value = rest.partition("=")
    try:
        return key.strip(), float(value)
    except ValueError:
        return None


def dial_of(models) -> Dial | None:
    """The dial when ``models`` (at least two) are world variants of one family that differ
    only in one numeric setting, each at another value; else None."""
    models = sorted(set(models))
    settings = [_setting(m) for m in models]
    families = {m.partition(":")[0] for m in models}
    if len(models) < 2 or None in settings or len(families) != 1:
        return None
    keys = {k for k, _ in settings}
    values = [v for _, v in settings]
    if len(keys) != 1 or len(set(values)) != len(values):
        return None
    return Dial(keys.pop(), dict(zip(models, values, strict=True)))


def uses_attribute(task: str, attribute: str) -> bool:
    """Whether world task ``task`` (``world:count_texture/12@sketch``) labels ``attribute``."""
    name = task.partition(":")[2].split("@")[0].split("/")[0]
    return attribute in name.split("_")


def _tau(x, y) -> float:
    """Kendall's tau (NaN below 3 pairs or for a constant variable: the stats package rule)."""
    return relate(np.asarray(x, float), np.asarray(y, float), pvalues=False).kendall_tau


@dataclass(frozen=True)
class DialAnalysis:
    """``measures``: per task, its difficulty measures at each dial value and each measure's
    tau with the dial. ``outcomes``: per (method, dial value, outcome) the mean over the tasks
    that use the attribute (``n_tasks`` of them). ``trend``: per (method, outcome) tau of
    those means with the dial. ``claim``: claim 1's ground-truth reading (:func:`claim_reading`)."""

    dial: Dial
    measures: pd.DataFrame
    outcomes: pd.DataFrame
    trend: pd.DataFrame
    claim: dict


def _difficulty_rows(records: list[RunRecord], dial: Dial) -> pd.DataFrame:
    rows = []
    for rec in records:
        if rec.complete and rec.difficulty is not None and rec.model in dial.values:
            row = {"task": rec.task, "value": dial.values[rec.model]}
            row |= {m: getattr(rec.difficulty, m) for m in DIAL_MEASURES}
            rows.append(row)
    frame = pd.DataFrame(rows, columns=["task", "value", *DIAL_MEASURES])
    return frame.groupby(["task", "value"], as_index=False)[list(DIAL_MEASURES)].mean()


def measure_taus(records: list[RunRecord], dial: Dial) -> pd.DataFrame:
    """Per task: whether it uses the dial's attribute, the number of dial levels it was
    measured at, and each measure's Kendall tau with the dial value (NaN below 2 levels)."""
    per = _difficulty_rows(records, dial)
    rows = []
    for task, part in per.groupby("task", sort=True):
        row = {"task": task, "uses": uses_attribute(task, dial.attribute), "levels": len(part)}
        row |= {m: _tau(part["value"], part[m]) for m in DIAL_MEASURES}
        rows.append(row)
    return pd.DataFrame(rows, columns=["task", "uses", "levels", *DIAL_MEASURES])


def outcome_means(records: list[RunRecord], dial: Dial) -> pd.DataFrame:
    """Per (method, dial value, outcome): the mean over tasks using the attribute of the
    task's seed mean, and how many tasks entered it."""
    rows = []
    for rec in records:
        out = rec.outcomes if rec.complete else None
        if out is None or rec.model not in dial.values or rec.shots is not None:
            continue
        if not uses_attribute(rec.task, dial.attribute):
            continue
        for o in OUTCOMES:
            rows.append((rec.method, dial.values[rec.model], rec.task, o, getattr(out, o)))
    frame = pd.DataFrame(rows, columns=["method", "value", "task", "outcome", "y"])
    frame["y"] = pd.to_numeric(frame["y"])
    cells = frame.groupby(["method", "value", "outcome", "task"], as_index=False)["y"].mean()
    means = cells.groupby(["method", "value", "outcome"], as_index=False)["y"]
    return means.agg(mean="mean", n_tasks="count")


def outcome_trend(means: pd.DataFrame) -> pd.DataFrame:
    """Per (method, outcome): Kendall tau of the mean outcome with the dial value."""
    rows = [
        {"method": m, "outcome": o, "tau": _tau(part["value"], part["mean"])}
        for (m, o), part in means.groupby(["method", "outcome"], sort=True)
    ]
    return pd.DataFrame(rows, columns=["method", "outcome", "tau"])


def claim_reading(taus: pd.DataFrame) -> dict:
    """Over the tasks that use the attribute: mean tau and mean |tau| of ss and of ACS, the
    number of tasks where |tau(ss)| > |tau(ACS)| (and the reverse), and where each has the sign
    the paper's reading expects (ss falls, ACS rises with the mention rate)."""
    used = taus[taus["uses"]].dropna(subset=["silhouette_modality", "acs"])
    ss, acs = used["silhouette_modality"], used["acs"]
    return {
        "n": len(used),
        "ss_mean": float(ss.mean()) if len(used) else math.nan,
        "acs_mean": float(acs.mean()) if len(used) else math.nan,
        "ss_abs": float(ss.abs().mean()) if len(used) else math.nan,
        "acs_abs": float(acs.abs().mean()) if len(used) else math.nan,
        "ss_better": int((ss.abs() > acs.abs()).sum()),
        "acs_better": int((acs.abs() > ss.abs()).sum()),
        "ss_expected": int((ss * EXPECTED_SIGN["silhouette_modality"] > 0).sum()),
        "acs_expected": int((acs * EXPECTED_SIGN["acs"] > 0).sum()),
    }


def dial_analysis(records: list[RunRecord]) -> DialAnalysis | None:
    """The dial reading of a study's records (None when its models do not form a dial)."""
    dial = dial_of({r.model for r in records})
    if dial is None:
        return None
    taus = measure_taus(records, dial)
    paper = [r for r in records if r.method in PAPER_METHODS]
    means = outcome_means(paper, dial)
    return DialAnalysis(dial, taus, means, outcome_trend(means), claim_reading(taus))
