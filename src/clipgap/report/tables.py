"""Tables of a study: one row per run (wide, and long: one row per run x metric x dataset),
per-task difficulty, absolute accuracies, and per-method summaries.

Outcomes are fractions of accuracy: ``delta_id`` and ``delta_dg`` in [-1, 1] (positive = gain),
``cf`` in [-1, 1] (negative = forgetting). A "cell" is one (task, arm) pair (arms: see
:mod:`.labels`); its value is the mean over seeds and its spread the standard deviation over
seeds (``stats.mean_std``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from clipgap.record import DIFFICULTY_KEYS, RunRecord, mean_or_none
from clipgap.report.labels import OUTCOMES, order_arms, shots_text
from clipgap.report.study import Study
from clipgap.stats import mean_std, pooled_std

# Per run: zero-shot and fine-tuned accuracy averaged over the shifted domains (control tasks)
# that both were scored on, so that ft_dg_mean - zs_dg_mean = delta_dg (ft_control_mean -
# zs_control_mean = cf).
MEAN_ACCURACIES = ("zs_dg_mean", "ft_dg_mean", "zs_control_mean", "ft_control_mean")
# The long (tidy) format: one row per complete run x metric x dataset scored.
LONG_COLUMNS = (
    "run_id", "task", "method", "seed", "preset", "shots", "model", "metric", "dataset", "role",
    "value",
)  # fmt: skip
# The difficulty measures the report's tables show (results.csv has every DIFFICULTY_KEYS).
DIFFICULTY_COLUMNS = (
    "silhouette_modality",
    "silhouette_class",
    "acs",
    "zero_shot_accuracy",
    "modality_gap",
)
FIXED_COLUMNS = (
    "run_id", "status", "error", "task", "method", "seed", "preset", "shots", "model", "unit",
    "arm", "trial", "selected", "difficulty_split", *DIFFICULTY_KEYS, "n_images", "n_classes", "zs_id", "ft_id",
    *MEAN_ACCURACIES, *OUTCOMES, "trainable_params", "best_epoch", "val_accuracy", "val_accuracy_start",
    "seconds", "eval_seconds", "peak_memory_mb", "device",
)  # fmt: skip
# Order of the per-domain, per-control and version columns that follow FIXED_COLUMNS.
EXTRA_PREFIXES = ("zs_dg[", "ft_dg[", "delta_dg[", "zs_control[", "ft_control[", "cf[", "version_")


def results_frame(study: Study) -> pd.DataFrame:
    """One row per finished run (complete and failed), flattened, in a stable column order.

    ``unit`` is the analysed task (prefixed by the model when a study has several models) and
    ``arm`` the method, suffixed by ``/preset`` when a study has several presets and by ``@k``
    when any run limited its training images (``shots`` is ``all`` for the full split).
    Per-domain and per-control columns are ``zs_dg[D]``, ``ft_dg[D]``, ``delta_dg[D]``,
    ``zs_control[T]``, ``ft_control[T]`` and ``cf[T]``; versions are ``version_<name>``.
    ``trial`` is a search's trial index (empty outside a search) and ``selected`` whether the
    report uses the run (:func:`clipgap.report.selection.selection_flags`: True outside a
    search, one trial per task x method x seed in a search).
    """
    from clipgap.report.selection import in_search, selection_flags, trial_index

    several_models = len({r.model for r in study.records}) > 1
    several_presets = len({r.preset for r in study.records}) > 1
    limited = any(r.shots is not None for r in study.records)
    rows = []
    flags = selection_flags(study.records)
    for rec, chosen in zip(study.records, flags, strict=True):
        shots = shots_text(rec.shots)
        arm = f"{rec.method}/{rec.preset}" if several_presets else rec.method
        row = {
            "run_id": rec.run_id,
            "status": rec.status,
            "error": rec.error or "",
            "task": rec.task,
            "method": rec.method,
            "seed": rec.seed,
            "preset": rec.preset,
            "shots": shots,
            "model": rec.model,
            "unit": f"{rec.model} | {rec.task}" if several_models else rec.task,
            "arm": f"{arm}@{shots}" if limited else arm,
            "trial": trial_index(rec) if in_search(rec) else None,
            "selected": chosen,
        }
        if rec.complete:
            row.update(_flatten_complete(rec))
        rows.append(row)
    frame = pd.DataFrame(rows).astype({"trial": "Int64"})
    extra = sorted((c for c in frame.columns if c not in FIXED_COLUMNS), key=_extra_order)
    return frame.reindex(columns=[*FIXED_COLUMNS, *extra])


def long_results(study: Study) -> pd.DataFrame:
    """The tidy long format: one row per complete run x metric x dataset (``LONG_COLUMNS``).

    ``role`` is ``id`` (``dataset`` = the task's test split), ``dg`` (a shifted domain spec) or
    ``control`` (a control task not trained on). ``metric`` is ``zero_shot`` or ``finetuned``
    (top-1 accuracy in [0, 1]), ``delta`` on ``id`` and ``dg`` rows and ``cf`` on ``control``
    rows (fine-tuned - zero-shot, in [-1, 1]; a negative ``cf`` is forgetting). ``shots`` is
    text (``all`` or k). Failed runs have no rows. Rows follow the study's run order, then
    ``id``, ``dg``, ``control``, datasets by name.
    """
    rows = []
    for rec in study.complete:
        ident = (rec.run_id, rec.task, rec.method, rec.seed, rec.preset, shots_text(rec.shots))
        rows += [(*ident, rec.model, *row) for row in _long_rows(rec)]
    frame = pd.DataFrame(rows, columns=list(LONG_COLUMNS))
    return frame.astype({"seed": "int64", "value": "float64"})


def _long_rows(rec: RunRecord) -> list[tuple[str, str, str, float]]:
    """``(metric, dataset, role, value)`` of one complete run."""
    zs, ft, out = rec.zero_shot, rec.finetuned, rec.outcomes
    rows = [
        ("zero_shot", rec.task, "id", zs.id),
        ("finetuned", rec.task, "id", ft.id),
        ("delta", rec.task, "id", out.delta_id),
    ]
    for role, before, after, change, changes in (
        ("dg", zs.dg, ft.dg, "delta", out.delta_dg_per_domain),
        ("control", zs.control, ft.control, "cf", out.cf_per_control),
    ):
        for name in sorted(set(before) | set(after)):
            if name in before:
                rows.append(("zero_shot", name, role, before[name]))
            if name in after:
                rows.append(("finetuned", name, role, after[name]))
            if name in changes:
                rows.append((change, name, role, changes[name]))
    return rows


def _extra_order(column: str) -> tuple[int, str]:
    """Per-domain columns, then per-control columns, then versions; by name within a group."""
    for rank, prefix in enumerate(EXTRA_PREFIXES):
        if column.startswith(prefix):
            return rank, column
    return len(EXTRA_PREFIXES), column


def _flatten_complete(rec: RunRecord) -> dict:
    zs, ft, diff = rec.zero_shot, rec.finetuned, rec.difficulty
    row = {key: _number(diff.value(key)) for key in DIFFICULTY_KEYS}
    row.update(difficulty_split=diff.split, n_images=diff.n_images, n_classes=diff.n_classes)
    row.update(zs_id=zs.id, ft_id=ft.id)
    for name, (before, after) in (("dg", (zs.dg, ft.dg)), ("control", (zs.control, ft.control))):
        both = sorted(set(before) & set(after))
        row[f"zs_{name}_mean"] = _number(mean_or_none(before[k] for k in both))
        row[f"ft_{name}_mean"] = _number(mean_or_none(after[k] for k in both))
    row.update({key: _number(rec.outcomes.value(key)) for key in OUTCOMES})
    for key in ("trainable_params", "best_epoch", "val_accuracy", "val_accuracy_start"):
        row[key] = getattr(rec, key)
    row.update(seconds=rec.seconds, eval_seconds=rec.eval_seconds)
    row["peak_memory_mb"] = rec.peak_memory_mb
    row["device"] = rec.device
    for prefix, block in (("zs", zs), ("ft", ft)):
        for dom, value in block.dg.items():
            row[f"{prefix}_dg[{dom}]"] = value
        for task, value in block.control.items():
            row[f"{prefix}_control[{task}]"] = value
    for dom, value in rec.outcomes.delta_dg_per_domain.items():
        row[f"delta_dg[{dom}]"] = value
    for task, value in rec.outcomes.cf_per_control.items():
        row[f"cf[{task}]"] = value
    for name, version in (rec.versions or {}).items():
        row[f"version_{name}"] = version
    return row


def _number(value) -> float:
    """None (undefined) as NaN, so that a column of numbers stays numeric."""
    return math.nan if value is None else float(value)


def complete_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "complete"]


def _mean_std(values: Iterable) -> tuple[float, float]:
    """``stats.mean_std`` over the finite values; (nan, nan) when there are none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return math.nan, math.nan
    mean, std = mean_std(finite)
    return float(mean), float(std)


def difficulty_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per task: the difficulty measures (mean over its complete runs, which measure the same
    zero-shot model, so they agree), the number of images and classes they were measured on,
    and ``split``, the split they were measured on (``train`` or ``test``; several joined by
    ``, `` if the runs disagree)."""
    done = complete_rows(frame)
    columns = [*DIFFICULTY_COLUMNS, "n_images", "n_classes"]
    table = done.groupby("unit", sort=True)[columns].mean()
    splits = done.groupby("unit", sort=True)["difficulty_split"].agg(
        lambda s: ", ".join(sorted(set(s.dropna())))
    )
    return table.assign(split=splits).reset_index()


def cell_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (task, arm): seeds, and mean and std over seeds of each outcome.

    Columns ``unit, arm, shots, n_seeds, <outcome>, <outcome>_std`` for outcome in ``OUTCOMES``.
    """
    rows = []
    for (unit, arm), group in complete_rows(frame).groupby(["unit", "arm"], sort=True):
        row = {"unit": unit, "arm": arm, "shots": group["shots"].iloc[0], "n_seeds": len(group)}
        for outcome in OUTCOMES:
            row[outcome], row[f"{outcome}_std"] = _mean_std(group[outcome])
        rows.append(row)
    stats = [f"{o}{s}" for o in OUTCOMES for s in ("", "_std")]
    return pd.DataFrame(rows, columns=["unit", "arm", "shots", "n_seeds", *stats])


def method_table(frame: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per method: outcomes averaged over tasks of the per-task seed means.

    ``<outcome>`` is the mean over tasks; ``<outcome>_std`` the pooled seed standard deviation
    over tasks (``stats.pooled_std``; NaN with one seed); ``<outcome>_tasks`` how many tasks had
    a value; ``<outcome>_task_std`` the standard deviation over tasks of the per-task means.
    """
    done = complete_rows(frame)
    rows = []
    for arm in order_arms(cells["arm"]):
        mine = cells[cells["arm"] == arm]
        runs = done[done["arm"] == arm]
        row = {"arm": arm, "n_tasks": len(mine), "n_runs": len(runs)}
        for outcome in OUTCOMES:
            means = mine[outcome].dropna()
            stds, seeds = mine.loc[means.index, f"{outcome}_std"], mine.loc[means.index, "n_seeds"]
            row[outcome] = float(means.mean()) if len(means) else math.nan
            row[f"{outcome}_std"] = pooled_std(stds, seeds)
            row[f"{outcome}_task_std"] = _mean_std(means)[1] if len(means) > 1 else math.nan
            row[f"{outcome}_tasks"] = len(means)
        params = runs["trainable_params"].dropna()
        row["params_min"] = int(params.min()) if len(params) else None
        row["params_max"] = int(params.max()) if len(params) else None
        row["seconds"] = float(runs["seconds"].mean()) if runs["seconds"].notna().any() else None
        rows.append(row)
    return pd.DataFrame(rows)


def task_method_table(cells: pd.DataFrame, outcome: str = "delta_id") -> pd.DataFrame:
    """Rows = tasks, columns = methods (paper order), values = mean over seeds of ``outcome``."""
    table = cells.pivot(index="unit", columns="arm", values=outcome)
    return table.reindex(columns=order_arms(cells["arm"])).sort_index()


def accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (task, arm): seeds, and the mean over seeds of the absolute accuracies next to the
    outcomes: ``zs_id, ft_id, delta_id, zs_dg_mean, ft_dg_mean, delta_dg, zs_control_mean,
    ft_control_mean, cf`` (NaN where no seed has a value)."""
    columns = [
        "zs_id", "ft_id", "delta_id", "zs_dg_mean", "ft_dg_mean", "delta_dg",
        "zs_control_mean", "ft_control_mean", "cf",
    ]  # fmt: skip
    done = complete_rows(frame)
    groups = done.groupby(["unit", "arm"], sort=True)
    table = groups[columns].mean().join(groups.size().rename("n_seeds"))
    return table.reset_index()[["unit", "arm", "n_seeds", *columns]]


def forgetting_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Long table ``unit, arm, control, cf``: CF on each control task, mean over seeds."""
    done = complete_rows(frame)
    columns = [c for c in done.columns if c.startswith("cf[") and done[c].notna().any()]
    if not columns:
        return pd.DataFrame(columns=["unit", "arm", "control", "cf"])
    means = done.groupby(["unit", "arm"], sort=True)[columns].mean()
    long = means.stack(future_stack=True).rename("cf").reset_index()
    long = long.rename(columns={long.columns[2]: "control"})
    long["control"] = long["control"].str.slice(3, -1)
    return long.dropna(subset=["cf"]).reset_index(drop=True)
