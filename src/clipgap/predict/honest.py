"""The whole honest-prediction verdict for one set of targets: nested LOTO error of the measure
procedure against the nested difficulty-free baseline, its permutation p-value, hits and regret,
the naive measure (zero-shot accuracy), and the empirical coverage of the prediction intervals.

Targets are the columns of an outcome matrix Y (tasks x targets), e.g. every method's dID for
the report's ranking, or every (method, outcome) of an objective for ``recommend``; ``weights``
turn per-target errors into one number (mean over methods, objective weights).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from clipgap.errors import ConfigError
from clipgap.stats import nested as nst
from clipgap.stats.candidates import (
    BASELINES,
    RIDGE,
    baseline_candidates,
    check_baselines,
    check_combine,
    measure_candidates,
    standardise,
)

log = logging.getLogger(__name__)
NAIVE = "zero_shot_accuracy"  # the measure any new one must beat


@dataclass(frozen=True)
class NestedOptions:
    """Settings of the nested procedure: ``permutations`` (>= 100) of the null with ``seed``;
    "beats the baseline" needs p < ``level``; intervals aim at ``interval`` coverage; predictors
    use up to ``combine`` measures (ridge with ``ridge`` for 2 or 3); ``baselines`` among
    :data:`~clipgap.stats.candidates.BASELINES`."""

    permutations: int = nst.PERMUTATIONS
    level: float = nst.LEVEL
    interval: float = nst.INTERVAL
    combine: int = 2
    ridge: float = RIDGE
    baselines: tuple[str, ...] = BASELINES
    seed: int = 0

    def __post_init__(self):
        nst.check_permutations(self.permutations)
        check_combine(self.combine)
        check_baselines(self.baselines)
        for name in ("level", "interval"):
            value = getattr(self, name)
            if not (isinstance(value, float | int) and 0 < value < 1):
                raise ConfigError(f"{name}={value!r} must be a number in (0, 1)")


@dataclass(frozen=True)
class NestedQuality:
    """The procedure's verdict on ``n_tasks`` tasks (weighted errors; lower is better).

    ``best``: the predictor chosen on all tasks (what a new task is predicted with);
    ``chosen``: the predictor chosen in each LOTO fold; ``nested_mae``: the whole procedure's
    error; ``baseline``/``baseline_mae``: the difficulty-free procedure's choice and nested
    error; ``baselines``: plain LOTO error of each difficulty-free predictor alone and of the
    naive measure; ``p_value``: share of ``permutations`` shuffles of the difficulty values
    whose nested error is at most ``nested_mae`` (the unshuffled order counted as one);
    ``coverage``: empirical LOTO coverage of the ``interval`` intervals (``ols``, ``jackknife``);
    ``interval_method``: what widens the final interval (``ols`` when it covers, else
    ``conformal``: quantile of the nested residuals, which include the selection).
    """

    n_tasks: int
    n_candidates: int
    best: str
    chosen: tuple[str, ...]
    nested_mae: float
    baseline: str
    baseline_mae: float
    baselines: dict[str, float]
    p_value: float
    permutations: int
    level: float
    interval: float
    coverage: dict[str, float]
    loto: dict[str, float] = field(default_factory=dict)  # per candidate, not nested
    hits: int | None = None
    regret: float | None = None
    baseline_hits: int | None = None
    baseline_regret: float | None = None

    @property
    def beats_baseline(self) -> bool:
        return self.nested_mae < self.baseline_mae and self.p_value < self.level

    @property
    def interval_method(self) -> str:
        return "ols" if self.coverage.get("ols", 0.0) >= self.interval else "conformal"

    def verdict(self) -> str:
        """ "beats"/"does not beat" the baseline, with the p-value beside it."""
        word = "beats" if self.beats_baseline else "does not beat"
        return (
            f"{word} the difficulty-free baseline (nested error {self.nested_mae:.4g} vs "
            f"{self.baseline_mae:.4g}; permutation p = {self.p_value:.3f}, "
            f"{self.permutations} shuffles, level {self.level:g})"
        )

    def to_dict(self) -> dict:
        return {
            "n_tasks": self.n_tasks,
            "n_candidates": self.n_candidates,
            "best": self.best,
            "chosen_per_fold": list(self.chosen),
            "nested_mae": self.nested_mae,
            "baseline": self.baseline,
            "baseline_mae": self.baseline_mae,
            "baselines": dict(self.baselines),
            "p_value": self.p_value,
            "permutations": self.permutations,
            "level": self.level,
            "beats_baseline": self.beats_baseline,
            "hits": self.hits,
            "regret": self.regret,
            "baseline_hits": self.baseline_hits,
            "baseline_regret": self.baseline_regret,
            "coverage": {**self.coverage, "interval": self.interval},
            "interval_method": self.interval_method,
        }


def picks(scores: np.ndarray, truth: np.ndarray) -> tuple[int, float]:
    """Hits and mean regret of picking argmax(scores) per row (rows = tasks, cols = methods)."""
    chosen = truth[np.arange(len(truth)), np.argmax(scores, axis=1)]
    best = truth.max(axis=1)
    return int(np.sum(chosen >= best)), float(np.mean(best - chosen))


def nested_quality(
    measures: dict[str, np.ndarray],
    free: dict[str, np.ndarray],
    Y: np.ndarray,
    weights: np.ndarray,
    *,
    options: NestedOptions = NestedOptions(),
    objective: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[NestedQuality, nst.NestedRun, nst.NestedRun]:
    """Nested LOTO of the measure procedure over ``measures`` (name -> (n,) values, all finite)
    against the baselines (``free`` holds ``n_classes``), for outcomes ``Y`` (n, T).

    ``objective``: (method index (T,), signed weight (T,)) to score hits and regret: per task,
    method score = sum of its targets' weight * outcome. Returns the quality and the measure and
    baseline runs.
    """
    n = Y.shape[0]
    nst.check_tasks(n)
    if not measures:
        raise ConfigError("no difficulty measure to predict from")
    columns = {**measures, **_free_columns(free)}
    scale = standardise(columns)
    cands = measure_candidates(list(measures), combine=options.combine, ridge=options.ridge)
    run = nst.nested_run(cands, columns, scale, Y, weights)
    base_run = nst.nested_run(baseline_candidates(options.baselines), columns, scale, Y, weights)
    null = nst.null_errors(Y, weights, run.folds, permutations=options.permutations,
                           seed=options.seed)  # fmt: skip
    p = (1 + int(np.sum(null <= run.mae + 1e-12))) / (1 + options.permutations)
    alone = dict(zip(base_run.candidates, map(float, base_run.loto), strict=True))
    if NAIVE in measures:
        alone[NAIVE] = float(run.loto[run.candidates.index(NAIVE)])
    quality = NestedQuality(
        n_tasks=n,
        n_candidates=len(cands),
        best=run.candidates[run.best],
        chosen=run.chosen_names(),
        nested_mae=run.mae,
        baseline=base_run.candidates[base_run.best],
        baseline_mae=base_run.mae,
        baselines=alone,
        p_value=p,
        permutations=options.permutations,
        level=float(options.level),
        interval=float(options.interval),
        coverage=nst.coverage(Y, run.folds, run.chosen, run.predictions, options.interval),
        loto=dict(zip(run.candidates, map(float, run.loto), strict=True)),
        **_hits(objective, run, base_run, Y),
    )
    log.info("nested LOTO: %s", quality.verdict())
    return quality, run, base_run


def _free_columns(free: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    c = np.asarray(free["n_classes"], dtype=np.float64)
    return {"n_classes": c, "log_n_classes": np.log(np.maximum(c, 1.0))}


def _hits(objective, run, base_run, Y) -> dict:
    if objective is None:
        return {}
    method, signed = objective
    k = int(method.max()) + 1
    onehot = np.zeros((len(method), k))
    onehot[np.arange(len(method)), method] = signed
    truth = Y @ onehot
    hits, regret = picks(run.predictions @ onehot, truth)
    base_hits, base_regret = picks(base_run.predictions @ onehot, truth)
    return {"hits": hits, "regret": regret, "baseline_hits": base_hits,
            "baseline_regret": base_regret}  # fmt: skip


def conformal_half_width(run: nst.NestedRun, Y: np.ndarray, interval: float) -> np.ndarray:
    """Per target, the half-width of a split-conformal interval from the nested LOTO residuals
    (which include the choice of predictor): inf when the study is too small for ``interval``."""
    return nst.quantile_half_width(Y - run.predictions, interval)


def finite(value: float) -> bool:
    return value is not None and math.isfinite(value)
