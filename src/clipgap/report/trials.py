"""A search's trials as the report shows them: one row per complete trial run, with the values
drawn for it, its learning rate, validation accuracy, dID and whether it was selected.

The selection itself is :func:`clipgap.report.selection.selection_flags` (already in the results
frame's ``selected`` column); this module only lays the trials out for the search section and
the sensitivity figure.
"""

from __future__ import annotations

import math

import pandas as pd

from clipgap.report.study import Study

COLUMNS = ("unit", "arm", "task", "method", "seed", "trial", "values", "lr", "val_accuracy",
           "delta_id", "selected")  # fmt: skip


def trials_table(study: Study, results: pd.DataFrame) -> pd.DataFrame | None:
    """One row per complete run of a search (``COLUMNS``; ``values``: the drawn settings as a
    dict, ``lr``: the run's learning rate, drawn or not), in the results frame's order; None
    when no run belongs to a search."""
    searched = results[results["trial"].notna() & (results["status"] == "complete")]
    if searched.empty:
        return None
    config = {r.run_id: r.config for r in study.records}
    rows = []
    for row in searched.to_dict("records"):
        run = config[row["run_id"]]
        rows.append(
            {
                key: row[key]
                for key in (
                    "unit",
                    "arm",
                    "task",
                    "method",
                    "seed",
                    "val_accuracy",
                    "delta_id",
                    "selected",
                )
            }  # fmt: skip
            | {
                "trial": int(row["trial"]),
                "values": dict(run["trial"].get("values") or {}),
                "lr": _float(run.get("train", {}).get("lr")),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def settings_text(values: dict) -> str:
    """``lr 0.0031, rank 4``: a trial's drawn values in key order."""
    return ", ".join(
        f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(values.items())
    )


def method_choice(trials: pd.DataFrame) -> pd.DataFrame:
    """Per arm, the trial with the best mean validation accuracy over the tasks (and seeds) it
    ran on, ties to the lower trial index: the setting a preset takes from a search (a trial
    has the same values on every task). Columns ``arm, trial, values, val_accuracy, runs``."""
    rows = []
    for arm, mine in trials.dropna(subset=["val_accuracy"]).groupby("arm", sort=False):
        means = mine.groupby("trial")["val_accuracy"].agg(["mean", "size"])
        best = min(means.index, key=lambda t: (-means.at[t, "mean"], t))
        values = mine.loc[mine["trial"] == best, "values"].iloc[0]
        rows.append({"arm": arm, "trial": int(best), "values": values,
                     "val_accuracy": float(means.at[best, "mean"]),
                     "runs": int(means.at[best, "size"])})  # fmt: skip
    return pd.DataFrame(rows, columns=["arm", "trial", "values", "val_accuracy", "runs"])
