"""Nested leave-one-task-out (LOTO) prediction and its permutation null (science.md, "Honest
prediction").

For each held-out task i, every candidate predictor (:mod:`clipgap.stats.candidates`) is
scored by its LOTO error on the other tasks only; the one with the lowest error is fitted on the
other tasks and predicts task i. The errors, hits and regret of those predictions are the whole
procedure's. The difficulty-free baseline is chosen the same way among its own candidates. The
null shuffles the difficulty values across tasks and reruns the whole procedure: since the
procedure treats tasks symmetrically, shuffling the measures is the same as shuffling the
outcomes, so the hat matrices are built once and every permutation is a few matrix products.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy import stats

from clipgap.errors import ConfigError, DataError
from clipgap.stats.candidates import Candidate, Smoother, design, smoother

MIN_NESTED_TASKS = 5  # inner lines are fitted on n - 2 >= 3 tasks
MIN_PERMUTATIONS = 100
PERMUTATIONS = 1000
LEVEL = 0.05  # significance level of "beats the baseline"
INTERVAL = 0.90  # coverage the prediction intervals aim for


def check_permutations(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"permutations={value!r} is not an integer; give >= {MIN_PERMUTATIONS}")
    if value < MIN_PERMUTATIONS:
        raise ConfigError(
            f"permutations={value} is too few for a p-value; give >= {MIN_PERMUTATIONS} "
            f"(default {PERMUTATIONS})"
        )
    return int(value)


def check_tasks(n: int, what: str = "the study") -> None:
    if n < MIN_NESTED_TASKS:
        raise DataError(
            f"{what} has {n} task(s); nested leave-one-task-out needs at least "
            f"{MIN_NESTED_TASKS} (one held out, and a line fitted on n - 2 >= 3 inside)"
        )


@dataclass(frozen=True)
class Fold:
    """The candidates' smoothers on the tasks other than ``held_out``, and the weights ``ahead``
    (C, m) that map those tasks' outcomes to the prediction at the held-out task."""

    held_out: int
    rows: np.ndarray
    smoothers: tuple[Smoother, ...]
    loo: np.ndarray  # (C, m, m)
    ahead: np.ndarray  # (C, m)
    loo32: np.ndarray  # loo in float32, for ranking the candidates under every shuffle


def folds(cands: list[Candidate], columns, scale, n: int) -> list[Fold]:
    out = []
    for i in range(n):
        rows = np.flatnonzero(np.arange(n) != i)
        sm, ahead = [], []
        for cand in cands:
            s = smoother(design(cand, columns, scale, rows), cand.penalty)
            sm.append(s)
            ahead.append(design(cand, columns, scale, np.array([i]))[0] @ s.coef)
        loo = np.stack([s.loo for s in sm])
        out.append(Fold(i, rows, tuple(sm), loo, np.stack(ahead), loo.astype(np.float32)))
    return out


def select_predict(Y: np.ndarray, weights: np.ndarray, fold_list: list[Fold]):
    """For outcomes ``Y`` (P, n, T) (P permutations of the tasks), the candidate chosen in each
    fold (P, n) and the nested predictions (P, n, T)."""
    P, n, T = Y.shape
    chosen = np.empty((P, n), dtype=np.intp)
    pred = np.empty_like(Y)
    for f in fold_list:
        C, m, _ = f.loo.shape
        Ys = Y[:, f.rows, :]  # (P, m, T)
        # one BLAS product for every shuffle, in float32: it only ranks the candidates
        flat = Ys.transpose(1, 0, 2).reshape(m, P * T).astype(np.float32)
        resid = (f.loo32.reshape(C * m, m) @ flat).reshape(C, m, P, T)
        err = (np.abs(resid, out=resid) @ weights.astype(np.float32)).mean(axis=1)  # (C, P)
        pick = err.argmin(axis=0)  # ties: the first candidate
        chosen[:, f.held_out] = pick
        pred[:, f.held_out, :] = np.einsum("pm,pmt->pt", f.ahead[pick], Ys)
    return chosen, pred


def weighted_mae(pred: np.ndarray, Y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_t w_t mean_i |pred - y| over the last two axes."""
    return np.abs(pred - Y).mean(axis=-2) @ weights


def null_errors(
    Y: np.ndarray, weights: np.ndarray, fold_list, *, permutations: int, seed: int
) -> np.ndarray:
    """The nested weighted error after each of ``permutations`` shuffles of the tasks."""
    rng = np.random.default_rng(seed)
    n, T = Y.shape
    C = fold_list[0].loo.shape[0]
    chunk = max(1, int(4e6 // max(1, C * n * T)))
    out = []
    for start in range(0, permutations, chunk):
        size = min(chunk, permutations - start)
        order = np.argsort(rng.random((size, n)), axis=1)
        Yp = Y[order]  # (size, n, T)
        _, pred = select_predict(Yp, weights, fold_list)
        out.append(weighted_mae(pred, Yp, weights))
    return np.concatenate(out)


def plain_loto(cands, columns, scale, Y, weights) -> tuple[list[Smoother], np.ndarray]:
    """Each candidate fitted on all tasks, and its (non-nested) LOTO weighted error."""
    full = [smoother(design(c, columns, scale), c.penalty) for c in cands]
    errors = np.array([float(np.abs(s.loo @ Y).mean(axis=0) @ weights) for s in full])
    return full, errors


def coverage(Y, fold_list, chosen, pred, interval: float) -> dict[str, float]:
    """Share of (held-out task, target) pairs whose outcome lies in the ``interval`` prediction
    interval of the candidate chosen in that fold: ``ols`` (t interval with leverage, residual
    dof m - tr(H)) and ``jackknife`` (prediction +- the ceil(interval (m + 1))-th smallest inner
    LOTO |residual|; infinite when that exceeds m)."""
    ols, jack = [], []
    for f in fold_list:
        c = chosen[f.held_out]
        s = f.smoothers[c]
        Ys = Y[f.rows]
        miss = np.abs(Y[f.held_out] - pred[f.held_out])
        ols.append(miss <= ols_half_width(s, Ys, f.ahead[c], interval))
        jack.append(miss <= quantile_half_width(f.loo[c] @ Ys, interval))
    return {"ols": float(np.mean(ols)), "jackknife": float(np.mean(jack))}


def ols_half_width(s: Smoother, Ys: np.ndarray, ahead: np.ndarray, interval: float):
    dof = s.dof
    if dof < 0.5:
        return np.full(Ys.shape[1], np.nan)
    resid = Ys - s.hat @ Ys
    sd = np.sqrt((resid**2).sum(axis=0) / dof)
    t = float(stats.t.ppf(0.5 + interval / 2.0, dof))
    return t * sd * math.sqrt(1.0 + float(ahead @ ahead))


def quantile_half_width(resid: np.ndarray, interval: float) -> np.ndarray:
    """Per column, the ceil(interval (m + 1))-th smallest |residual| (inf when beyond m)."""
    m = resid.shape[0]
    k = math.ceil(interval * (m + 1))
    if k > m:
        return np.full(resid.shape[1], np.inf)
    return np.sort(np.abs(resid), axis=0)[k - 1]


@dataclass(frozen=True)
class NestedRun:
    """One nested LOTO run over ``candidates`` (names), unpermuted."""

    candidates: tuple[str, ...]
    chosen: np.ndarray  # (n,) candidate index per held-out task
    predictions: np.ndarray  # (n, T)
    mae: float  # weighted nested error
    loto: np.ndarray  # (C,) plain (non-nested) LOTO weighted error per candidate
    full: list  # smoothers on all tasks
    folds: list
    cands: tuple[Candidate, ...] = ()
    columns: dict | None = None  # feature -> values on the tasks
    scale: dict | None = None  # feature -> (mean, sd) the designs standardise with

    @property
    def best(self) -> int:
        """The candidate the procedure picks on all tasks (lowest plain LOTO error)."""
        return int(np.argmin(self.loto))

    def chosen_names(self) -> tuple[str, ...]:
        return tuple(self.candidates[c] for c in self.chosen)


def nested_run(cands, columns, scale, Y, weights) -> NestedRun:
    n = Y.shape[0]
    fold_list = folds(cands, columns, scale, n)
    chosen, pred = select_predict(Y[None], weights, fold_list)
    full, loto = plain_loto(cands, columns, scale, Y, weights)
    return NestedRun(
        candidates=tuple(c.name for c in cands),
        chosen=chosen[0],
        predictions=pred[0],
        mae=float(weighted_mae(pred[0], Y, weights)),
        loto=loto,
        full=full,
        folds=fold_list,
        cands=tuple(cands),
        columns=columns,
        scale=scale,
    )
