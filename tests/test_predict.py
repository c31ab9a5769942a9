"""Which difficulty measure predicts which outcome: LOTO error, R^2 and rank correlations on
synthetic records with known linear relations, checked against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from clipgap.errors import DataError
from clipgap.predict import (
    POOLED,
    compare_measures,
    study_table,
)
from clipgap.record import DIFFICULTY_KEYS, Difficulty, RunRecord, Scores
from clipgap.report.figures.canvas import save
from clipgap.report.figures.predictor_errors import measure_ranking_figure
from clipgap.report.sections.predictors import ranking_rows
from clipgap.stats import fit_line, prediction_interval

# ---- synthetic records -----------------------------------------------------------------------


def make_record(
    task: str,
    method: str,
    seed: int,
    measures: dict,
    *,
    zs: float,
    d_id: float,
    d_dg: float | None = 0.0,
    cf: float | None = 0.0,
    preset: str = "tuned",
    model: str = "world-tiny",
    shots: int | None = None,
    split: str = "train",
) -> RunRecord:
    """A complete record whose outcomes are exactly d_id, d_dg and cf."""
    dg_zs = {f"{task}@sketch": 0.4} if d_dg is not None else {}
    ctrl_zs = {"world:control": 0.5} if cf is not None else {}
    ft = Scores(
        id=zs + d_id,
        dg={k: v + d_dg for k, v in dg_zs.items()},
        control={k: v + cf for k, v in ctrl_zs.items()},
    )
    return RunRecord(
        run_id=f"{task}-{method}-{seed}-{preset}-{shots}",
        status="complete",
        task=task,
        method=method,
        seed=seed,
        preset=preset,
        model=model,
        config={"pretrained": None},
        shots=shots,
        difficulty=Difficulty(n_images=100, n_classes=5, split=split, **measures),
        zero_shot=Scores(id=zs, dg=dg_zs, control=ctrl_zs),
        finetuned=ft,
    )


def synthetic_study(
    *,
    n_tasks=8,
    seeds=2,
    methods=("full", "lora", "bitfit", "linear_probe"),
    signal=True,
    rng=0,
    measured=DIFFICULTY_KEYS,
) -> list[RunRecord]:
    """dID is linear in silhouette_modality, dDG linear in acs, CF linear in modality_gap (per
    method, small noise); other measures are noise; logme is never measured (None) and iimm is
    missing on one task; measures not in ``measured`` are None. ``signal=False``: outcomes are
    per-method constants plus noise."""
    rng = np.random.default_rng(rng)
    records = []
    for t in range(n_tasks):
        task = f"world:t{t}"
        measures = {k: float(rng.uniform(0.1, 0.9)) for k in DIFFICULTY_KEYS}
        zs = measures["zero_shot_accuracy"] * 0.5
        measures["logme"] = None
        measures.update({k: None for k in DIFFICULTY_KEYS if k not in measured})
        if t == 3:
            measures["iimm"] = None
        for j, method in enumerate(methods):
            for seed in range(seeds):
                noise = rng.normal(0, 0.01, 3)
                if signal:
                    d_id = 0.05 + 0.1 * j + (0.3 - 0.05 * j) * measures["silhouette_modality"]
                    d_dg = -0.02 + 0.2 * measures["acs"] * (1 + j / 4)
                    cf = -0.1 * measures["modality_gap"] * (j + 1) / 2
                else:
                    d_id, d_dg, cf = 0.05 * j, 0.02 * j, -0.01 * j
                records.append(
                    make_record(
                        task,
                        method,
                        seed,
                        measures,
                        zs=zs,
                        d_id=d_id + noise[0],
                        d_dg=d_dg + noise[1],
                        cf=cf + noise[2],
                    )  # fmt: skip
                )
    return records


def seed_means(records, method, outcome):
    """Direct per-task seed means, in task order (the oracle for the table)."""
    by_task: dict[str, list[float]] = {}
    for r in records:
        if r.method != method:
            continue
        value = {
            "delta_id": r.finetuned.id - r.zero_shot.id,
            "delta_dg": np.mean([r.finetuned.dg[k] - r.zero_shot.dg[k] for k in r.zero_shot.dg]),
            "cf": np.mean([r.finetuned.control[k] - r.zero_shot.control[k] for k in r.zero_shot.control]),
            "gain_norm": (r.finetuned.id - r.zero_shot.id) / (1 - r.zero_shot.id),
        }[outcome]  # fmt: skip
        by_task.setdefault(r.task, []).append(value)
    tasks = sorted(by_task)
    return tasks, np.array([np.mean(by_task[t]) for t in tasks])


def task_measure(records, tasks, measure):
    first = {}
    for r in records:
        first.setdefault(r.task, r.difficulty.value(measure))
    return np.array([first[t] for t in tasks], dtype=float)


def direct_loto(x, y):
    """Leave-one-out MAE of np.polyfit lines, and of the mean of the others."""
    errs, base = [], []
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        errs.append(abs(slope * x[i] + intercept - y[i]))
        base.append(abs(y[keep].mean() - y[i]))
    return float(np.mean(errs)), float(np.mean(base))


@pytest.fixture(scope="module")
def study():
    return synthetic_study()


@pytest.fixture(scope="module")
def comparison(study):
    return compare_measures(study)


def score_of(comparison, measure, outcome, method):
    (hit,) = [
        s.stats
        for s in comparison.scores
        if (s.measure, s.outcome, s.method) == (measure, outcome, method)
    ]
    return hit


# ---- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "measure,outcome,method",
    [
        ("silhouette_modality", "delta_id", "full"),
        ("acs", "delta_dg", "lora"),
        ("gbc", "cf", "linear_probe"),
        ("zero_shot_accuracy", "gain_norm", "bitfit"),
    ],
)
def test_loto_and_correlations_match_a_direct_loop(study, comparison, measure, outcome, method):
    tasks, y = seed_means(study, method, outcome)
    x = task_measure(study, tasks, measure)
    mae, base = direct_loto(x, y)
    got = score_of(comparison, measure, outcome, method)
    assert got.n == len(tasks) == 8
    assert got.loto_mae == pytest.approx(mae, rel=1e-9)
    assert got.baseline_mae == pytest.approx(base, rel=1e-9)
    assert got.r2 == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, rel=1e-9)
    assert got.spearman == pytest.approx(stats.spearmanr(x, y)[0])
    assert got.kendall == pytest.approx(stats.kendalltau(x, y)[0])
    assert got.weighted_tau == pytest.approx(stats.weightedtau(x, y)[0])
    assert got.slope == pytest.approx(np.polyfit(x, y, 1)[0])


def test_pooled_arm_is_the_mean_of_the_paper_methods(study, comparison):
    tasks, full = seed_means(study, "full", "delta_id")
    paper = [seed_means(study, m, "delta_id")[1] for m in ("full", "lora", "bitfit")]
    y = np.mean(paper, axis=0)  # linear_probe is not a paper method
    x = task_measure(study, tasks, "acs")
    got = score_of(comparison, "acs", "delta_id", POOLED)
    assert got.loto_mae == pytest.approx(direct_loto(x, y)[0], rel=1e-9)
    assert not np.allclose(y, full)


def test_the_measure_that_carries_the_signal_ranks_first(comparison):
    assert comparison.ranking("delta_id")[0].measure == "silhouette_modality"
    assert comparison.ranking("delta_dg")[0].measure == "acs"
    assert comparison.ranking("cf")[0].measure == "modality_gap"
    best = comparison.ranking("delta_id")[0]
    assert best.loto_mae < 0.5 * best.baseline_mae and best.n_methods == 4
    sentence = comparison.summary("delta_id")
    assert sentence.startswith("On this study (model world-tiny, preset tuned, 8 tasks)")
    assert "silhouette_modality predicted dID best" in sentence
    assert "(per measure, not nested: a description)" in sentence
    nested = comparison.nested["delta_id"]
    assert "silhouette_modality" in nested.best and nested.beats_baseline
    assert nested.n_tasks == 8 and nested.p_value < 0.05 and nested.permutations == 1000
    assert "beats the difficulty-free baseline (nested error" in sentence and "p = " in sentence


def test_measures_missing_on_some_task_are_unavailable_and_named(comparison):
    why = dict(comparison.unavailable)
    assert set(why) == {"logme", "iimm"}
    assert "world:t3" in why["iimm"] and "8 task(s)" in why["logme"]
    assert not any(s.measure in why for s in comparison.scores)
    assert "Not scored (not measured on every task): iimm, logme" in comparison.summary()


def test_no_signal_says_no_measure_beats_the_baseline():
    # one measure, so the best of many noise measures cannot win by chance
    records = synthetic_study(signal=False, rng=3, measured=("silhouette_modality",))
    comparison = compare_measures(records)
    assert [r.measure for r in comparison.ranking("delta_id")] == ["silhouette_modality"]
    sentence = comparison.summary("delta_id")
    assert "does not beat the difficulty-free baseline" in sentence and "p = " in sentence
    assert not comparison.nested["delta_id"].beats_baseline


def test_rows_and_figure(comparison, tmp_path):
    rows = ranking_rows(comparison)
    first = [r for r in rows if r["outcome"] == "dID"][0]
    assert first["rank"] == 1 and first["measure"] == "silhouette_modality"
    assert first["below_baseline"] and first["r2"] > 0.8 and first["tasks"] == 8
    # 10 available measures (the 12 less iimm, logme) x 4 outcomes x (4 methods + pooled)
    assert len(comparison.scores) == 10 * 4 * 5
    path = tmp_path / "fig" / "measures.png"
    save(measure_ranking_figure(comparison), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_table_keeps_one_preset_and_full_data_runs(study):
    extra = [
        make_record("world:t0", "full", 9, {}, zs=0.2, d_id=0.9, shots=4),
        make_record("world:t0", "full", 9, {}, zs=0.2, d_id=0.9, preset="paper"),
    ]
    with pytest.raises(DataError, match="mix presets"):
        study_table(study + extra)
    table = study_table(study + extra, preset="tuned")
    assert table.seeds[("full", "world:t0")] == 2  # shots=4 and the paper preset left out
    assert table.methods == ("full", "bitfit", "lora", "linear_probe")


def test_a_measure_undefined_outcome_skips_the_arm():
    records = [
        r.with_updates(zero_shot=Scores(id=r.zero_shot.id), finetuned=Scores(id=r.finetuned.id))
        for r in synthetic_study(n_tasks=5, methods=("full",))
    ]
    comparison = compare_measures(records)
    assert {s.outcome for s in comparison.scores} == {"delta_id", "gain_norm"}
    assert any("full / dDG: skipped" in n for n in comparison.notes)


def test_least_squares_line_matches_polyfit():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=9), rng.normal(size=9)
    line = fit_line(x, y)
    slope, intercept = np.polyfit(x, y, 1)
    assert (line.slope, line.intercept) == (pytest.approx(slope), pytest.approx(intercept))


@pytest.mark.parametrize("x0", [0.3, 2.5])
def test_prediction_interval_matches_the_textbook_formula(x0):
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, 7)
    y = 0.3 * x + rng.normal(0, 0.05, 7)
    n = len(x)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    s = math.sqrt(resid @ resid / (n - 2))
    sxx = ((x - x.mean()) ** 2).sum()
    half = stats.t.ppf(0.95, n - 2) * s * math.sqrt(1 + 1 / n + (x0 - x.mean()) ** 2 / sxx)
    low, high = prediction_interval(fit_line(x, y), x0, level=0.9)
    center = slope * x0 + intercept
    assert low == pytest.approx(center - half) and high == pytest.approx(center + half)


def test_prediction_interval_falls_back_when_it_cannot_be_estimated():
    # two points: the line fits exactly, no residual degrees of freedom
    low, high = prediction_interval(fit_line(np.array([0.0, 1.0]), np.array([1.0, 2.0])), 0.5)
    assert math.isnan(low) and math.isnan(high)
    # constant x: the mean model, t with n - 1 dof
    y = np.array([1.0, 2.0, 4.0])
    line = fit_line(np.ones(3), y)
    assert line.constant and line.slope == 0 and line.predict(7.0) == pytest.approx(y.mean())
    half = stats.t.ppf(0.95, 2) * y.std(ddof=1) * math.sqrt(1 + 1 / 3)
    assert prediction_interval(line, 7.0) == pytest.approx((y.mean() - half, y.mean() + half))


def test_too_few_tasks_for_nested_loto_is_said_in_the_ranking():
    comparison = compare_measures(synthetic_study(n_tasks=4))
    why = comparison.nested["delta_id"]
    assert isinstance(why, str) and why.startswith("4 task(s)") and "needs at least 5" in why
    assert f"Nested leave-one-task-out not computed: {why}." in comparison.summary("delta_id")
    assert comparison.ranking("delta_id")  # the per-measure description is still there
