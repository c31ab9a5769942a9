"""The gain-forgetting frontier along weight interpolation (WiSE-FT), from run records.

A run scored along alpha (``eval.alphas``) stores one :class:`~clipgap.record.AlphaPoint` per
alpha: test accuracies on the task, its DG domains and control tasks, and the accuracy on the
trainer's validation split. The record gives its curve (:meth:`~clipgap.record.RunRecord.curve`):
the outcomes at each alpha against the run's zero-shot scores, from alpha = 0 (the zero-shot
model: 0, 0, 0 by definition, used where alpha 0 was not scored) to alpha = 1 (the fine-tuned
model: the run's own outcomes, used where alpha 1 was not scored).

**Selection rule** (validation data only, never test): each run picks the alpha with the highest
validation accuracy among its scored alphas and alpha = 1 (the fine-tuned model, with the
trainer's validation accuracy where alpha 1 was not scored); ties go to the smaller alpha (closer
to zero-shot, so less forgetting). A run without a validation split has no selected alpha.

**Frontier vs difficulty**: per (task, arm), the CF at half the in-domain gain: the curve (seed
means per alpha) is followed from alpha = 0 to the first alpha where dID reaches
``GAIN_FRACTION`` of its alpha = 1 value, linearly interpolated between neighbouring alphas; CF
is read at that point. Undefined when dID(1) <= 0 (no gain to trade). Across tasks it is related
to ss with :func:`clipgap.stats.relate` (Spearman's rho, exact p up to 9 tasks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clipgap.record import CurvePoint
from clipgap.report.claims import Claim, ClaimOptions
from clipgap.report.claims.method_tradeoffs import claim_methods
from clipgap.report.labels import OUTCOMES, order_arms
from clipgap.report.study import Study
from clipgap.report.tables import cell_table
from clipgap.stats import relate

GAIN_FRACTION = 0.5
SELECTION_RULE = (
    "each run's alpha is the one with the highest accuracy on the run's validation split (the "
    "trainer's hold-out from the train split; never test data), among its scored alphas and "
    "alpha = 1; ties go to the smaller alpha (closer to zero-shot, less forgetting)"
)
SETTING = "selected α"
# A run config's eval.alpha_selection (set by a runner that splits its validation hold-out in
# two: one half chooses the epoch, the other scores every alpha, alpha = 1 included).
SPLIT_VALIDATION = "split_validation"
FOOTING = {
    True: (
        "epoch and α are chosen on equal footing: one half of each run's validation split "
        "chose the epoch, the other half scored every α (α = 1 included)"
    ),
    False: (
        "epoch and α are not chosen on equal footing: the α = 1 score is the validation "
        "accuracy that already won the epoch choice (a maximum over epochs), the other α "
        "scores are not, so the selection favours α = 1; exploratory only"
    ),
}
POINT_COLUMNS = ["run_id", "unit", "arm", "shots", "seed", "alpha", "stored", "val_accuracy"]


@dataclass(frozen=True)
class Frontier:
    """What the frontier section shows.

    ``points``: one row per (run, alpha) with the outcomes at alpha (``stored`` False for the
    alpha = 0 / 1 ends taken from the definitions). ``selected``: per run, its selected alpha
    and outcomes there. ``curves``: per (unit, arm, alpha), seed means of the outcomes.
    ``cells``: per (unit, arm), seed means and stds of the outcomes at the selected alphas
    (the shape of :func:`clipgap.report.tables.cell_table`, for claim 3). ``at_gain``: per
    (unit, arm), alpha and CF where dID reaches ``GAIN_FRACTION`` of dID(1), and the task's ss.
    ``relations``: per arm, CF at that gain vs ss across tasks. ``claims``: claim 3's tests at
    the selected alphas, exploratory (claim 3 is decided at alpha = 1 only, pre-stated).
    ``equal_footing``: whether epoch and alpha were chosen on separate validation halves
    (:func:`equal_footing`, :data:`FOOTING`).
    """

    points: pd.DataFrame
    selected: pd.DataFrame
    curves: pd.DataFrame
    cells: pd.DataFrame
    at_gain: pd.DataFrame
    relations: pd.DataFrame
    claims: list[Claim]
    alphas: tuple[float, ...]
    equal_footing: bool = False


def _nan(value) -> float:
    return math.nan if value is None else float(value)


def points_frame(study: Study, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (complete run with interpolation points, alpha): the record's curve, its
    ends completed (:meth:`clipgap.record.RunRecord.curve`)."""
    names = frame.set_index("run_id")[["unit", "arm", "shots"]]
    rows = []
    for rec in study.complete:
        if not rec.interpolation:
            continue
        unit, arm, shots = names.loc[rec.run_id]
        ident = {"run_id": rec.run_id, "unit": unit, "arm": arm, "shots": shots, "seed": rec.seed}
        rows += [ident | _point_row(point) for point in rec.curve()]
    return pd.DataFrame(rows, columns=[*POINT_COLUMNS, *OUTCOMES])


def equal_footing(records) -> bool:
    """Whether every run scored along alpha chose its epoch and its alpha on separate halves of
    its validation split (``config["eval"]["alpha_selection"] == "split_validation"``)."""
    scored = [r for r in records if r.interpolation]
    return bool(scored) and all(
        (r.config.get("eval") or {}).get("alpha_selection") == SPLIT_VALIDATION for r in scored
    )


def _point_row(point: CurvePoint) -> dict:
    row = {"alpha": point.alpha, "stored": point.stored, "val_accuracy": _nan(point.val_accuracy)}
    return row | {o: _nan(point.outcomes.value(o)) for o in OUTCOMES}


def select_alphas(points: pd.DataFrame) -> pd.DataFrame:
    """Per run: the selected alpha (:data:`SELECTION_RULE`) and the outcomes there; runs
    without a validation accuracy at any alpha are left out."""
    scored = points.dropna(subset=["val_accuracy"])
    # best validation accuracy first, then the smaller alpha
    order = scored.sort_values(["run_id", "val_accuracy", "alpha"], ascending=[True, False, True])
    return order.drop_duplicates("run_id", keep="first").reset_index(drop=True)


def half_gain(curve: pd.DataFrame, fraction: float = GAIN_FRACTION) -> tuple[float, float]:
    """(alpha, CF) where the curve's dID first reaches ``fraction`` of its alpha = 1 value,
    linear between neighbouring alphas; (nan, nan) when dID(1) <= 0 or CF is undefined.
    ``curve``: rows sorted by alpha from 0 to 1 with ``delta_id`` and ``cf``."""
    a, d, cf = (curve[c].to_numpy(dtype=float) for c in ("alpha", "delta_id", "cf"))
    if not (len(a) >= 2 and d[-1] > 0 and np.isfinite(cf).all() and np.isfinite(d).all()):
        return math.nan, math.nan
    target = fraction * d[-1]
    k = int(np.argmax(d >= target))
    if k == 0:
        return float(a[0]), float(cf[0])
    t = (target - d[k - 1]) / (d[k] - d[k - 1])
    return float(a[k - 1] + t * (a[k] - a[k - 1])), float(cf[k - 1] + t * (cf[k] - cf[k - 1]))


def curve_table(points: pd.DataFrame) -> pd.DataFrame:
    """Per (unit, arm, alpha): seed means of the outcomes (NaN unless every seed has it)."""
    means = points.groupby(["unit", "arm", "alpha"], sort=True)[list(OUTCOMES)]
    return means.agg(lambda s: s.mean(skipna=False)).reset_index()


def gain_table(curves: pd.DataFrame, difficulty: pd.DataFrame) -> pd.DataFrame:
    """Per (unit, arm): ``alpha_half`` and ``cf_half`` (:func:`half_gain`), dID and CF at alpha
    = 1, and the task's ss."""
    ss = difficulty.set_index("unit")["silhouette_modality"]
    rows = []
    for (unit, arm), curve in curves.groupby(["unit", "arm"], sort=True):
        alpha, cf = half_gain(curve)
        end = curve.iloc[-1]
        rows.append([unit, arm, float(ss.get(unit, math.nan)), alpha, cf, end["delta_id"]])
        rows[-1].append(end["cf"])
    columns = ["unit", "arm", "ss", "alpha_half", "cf_half", "delta_id_end", "cf_end"]
    return pd.DataFrame(rows, columns=columns)


def gain_relations(at_gain: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """Per arm: Spearman's rho (and Kendall's tau, the least-squares slope) of CF at half the
    in-domain gain against ss, over the tasks where it is defined."""
    rows = []
    for arm in arms:
        mine = at_gain[at_gain["arm"] == arm]
        rows.append({"arm": arm, **relate(mine["ss"], mine["cf_half"]).as_row()})
    return pd.DataFrame(rows)


def selected_cells(selected: pd.DataFrame) -> pd.DataFrame:
    """Per (unit, arm): seed means and stds of the outcomes at each seed's selected alpha, in
    :func:`clipgap.report.tables.cell_table`'s shape (claim 3 reads it as it reads the cells at
    alpha = 1)."""
    frame = selected.assign(status="complete")
    return cell_table(frame)


def frontier_analysis(
    study: Study,
    frame: pd.DataFrame,
    difficulty: pd.DataFrame,
    groups: dict[str, dict[str, str]],
    options: ClaimOptions,
) -> Frontier | None:
    """The frontier of a study, or None when no complete run was scored along alpha."""
    points = points_frame(study, frame)
    if points.empty:
        return None
    selected = select_alphas(points)
    curves = curve_table(points)
    cells = selected_cells(selected)
    at_gain = gain_table(curves, difficulty)
    stored = points.loc[points["stored"], "alpha"]
    return Frontier(
        points=points,
        selected=selected,
        curves=curves,
        cells=cells,
        at_gain=at_gain,
        relations=gain_relations(at_gain, order_arms(points["arm"])),
        claims=claim_methods(cells, groups, options, setting=SETTING),
        alphas=tuple(sorted(float(a) for a in stored.unique())),
        equal_footing=equal_footing(study.complete),
    )
