"""The gain-forgetting frontier: a study scored along alpha, alpha chosen on validation data, and
the report's frontier and measure-ranking sections.

Study part (tiny world, 3 training steps): a run's alpha = 1 point is its fine-tuned scores (the
runner does not score that model twice; ``test_points_are_the_interpolated_models`` checks that
the model interpolated at 1 scores the same); alpha = 0 is the zero-shot model's scores exactly
for full, A-CLIP, BitFit and LoRA (same tensors, same forward pass). For the linear probe and
CLIP-Adapter the alpha = 0 model holds the zero-shot head / identity adapter exactly but takes
other float operations (tests/test_interpolate.py): logits agree to a few ulps, so an accuracy
may differ by at most one image where two classes tie to that precision (the tolerance used).

Report part: records built here (tests/test_report.py's ``make_record``) with points whose
validation and test accuracies disagree, checked against values computed directly from them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from clipgap.data import digest
from clipgap.errors import ConfigError
from clipgap.record import PAPER_METHODS
from clipgap.report import build_report
from clipgap.report.analysis import analyse
from clipgap.report.claims import Status
from clipgap.report.frontier import half_gain, select_alphas
from clipgap.report.study import load_study
from clipgap.study import load_study_config, plan_runs, run_study
from tests.test_report import FIXTURE, make_record, write_study

pytestmark = pytest.mark.usefixtures("one_thread")

ALPHAS = [0.0, 0.5, 1.0]
METHODS = ["full", "aclip", "bitfit", "lora", "clip_adapter", "linear_probe"]
SAME_FORWARD = {"full", "aclip", "bitfit", "lora"}
N_TEST = 48


def study_dict(**eval_block) -> dict:
    return {
        "model": "world-tiny",
        "tasks": [
            {"name": "world:shape", "dg": ["world:shape@sketch"], "controls": ["world:light"]}
        ],
        "methods": METHODS,
        "train": {"epochs": 1, "max_steps": 3, "batch_size": 32},
        "eval": {"max_test_images": N_TEST, **eval_block},
    }


def config(tmp_path: Path, overrides=(), **eval_block):
    path = tmp_path / "study.yaml"
    path.write_text(json.dumps(study_dict(**eval_block)))
    return load_study_config(str(path), list(overrides), out=str(tmp_path / "out"))


# ---------------------------------------------------------------------------------------------
# Config and run identity
# ---------------------------------------------------------------------------------------------


def test_default_alphas_keep_run_hashes(tmp_path):
    plain = config(tmp_path)
    assert plain.eval.alphas == (1.0,) and not plain.eval.sweep
    for run in plan_runs(plain):
        assert run.config()["eval"] == {"batch_size": 256, "max_test_images": N_TEST}
        assert run.run_id == digest(run.config())
    assert "alphas" not in plain.identity()["eval"]
    same = config(tmp_path, alphas=[1])
    assert [r.run_id for r in plan_runs(same)] == [r.run_id for r in plan_runs(plain)]
    sweep = config(tmp_path, alphas=[1, 0, 0.5])
    assert sweep.eval.alphas == tuple(ALPHAS)  # sorted
    runs = plan_runs(sweep)
    assert all(r.alphas == tuple(ALPHAS) and r.config()["eval"]["alphas"] == ALPHAS for r in runs)
    assert not {r.run_id for r in runs} & {r.run_id for r in plan_runs(plain)}
    assert sweep.identity() != plain.identity()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[0, 1.5]", "eval.alphas[1]: 1.5 is outside [0, 1]"),
        ("[-0.1]", "eval.alphas[0]: -0.1 is outside [0, 1]"),
        ("[zero]", "eval.alphas[0]: expected float, got str 'zero'"),
        ("[true]", "eval.alphas[0]: expected float, got bool True"),
        ("0.5", "eval.alphas: expected list[float], got float 0.5"),
        ("[]", "eval.alphas: expected a non-empty list"),
        ("[0.5, 0.5]", "eval.alphas: a value is listed more than once"),
    ],
)
def test_bad_alphas_are_one_line(tmp_path, value, message):
    with pytest.raises(ConfigError) as err:
        config(tmp_path, [f"eval.alphas={value}"])
    assert message in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# A small study along alpha
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The study with eval.alphas = [0, 0.5, 1]: {method: record}, its context and dir."""
    tmp = tmp_path_factory.mktemp("swept")
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPGAP_CACHE", str(tmp / "cache"))
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = config(tmp, alphas=ALPHAS)
        finished = []
        outcome = run_study(cfg, progress=False, on_finished=finished.append)
        # every run of the grid finished: the study calls back once, with its directory
        assert finished == [Path(cfg.out)] and outcome.report_built
        from clipgap.study import RunContext

        ctx = RunContext.for_study(cfg, Path(cfg.out), progress=False)
        yield {r.method: r for r in outcome.records}, ctx, cfg
    finally:
        torch.set_num_threads(threads)
        mp.undo()


def test_study_records_hold_a_point_per_alpha(swept):
    records, _, _ = swept
    assert sorted(records) == sorted(METHODS)
    for method, rec in records.items():
        assert rec.complete, rec.error
        assert [p.alpha for p in rec.interpolation] == ALPHAS
        assert rec.interpolation[-1].scores == rec.finetuned, method
        assert rec.interpolation[-1].val_accuracy == rec.val_accuracy, method
        for point in rec.interpolation:
            assert set(point.scores.dg) == {"world:shape@sketch"}
            assert set(point.scores.control) == {"world:light"}
            assert 0.0 <= point.val_accuracy <= 1.0


def test_alpha_zero_is_the_zero_shot_scores(swept):
    """Each end of the sweep is the model already scored: alpha = 0 the zero-shot test scores,
    alpha = 1 the fine-tuned ones (that interpolation gives those models is tested below and in
    tests/test_interpolate.py)."""
    for method, rec in swept[0].items():
        assert rec.interpolation[0].scores == rec.zero_shot, method
        assert rec.interpolation[-1].scores == rec.finetuned, method


def test_validation_accuracy_is_on_the_trainers_hold_out(swept):
    """At alpha = 0 every method's validation accuracy is the zero-shot model's on the run's
    validation split, computed here directly (alpha = 1 is the trainer's own, see above)."""
    from clipgap.training import accuracy, training_splits, zero_shot_model

    records, ctx, cfg = swept
    run = plan_runs(cfg)[0]
    _, val = training_splits(ctx.task("world:shape", "train"), run.train)
    want = accuracy(zero_shot_model(ctx.backbone), val, progress=False)
    one_image = 1.0 / len(val) + 1e-12
    for method, rec in records.items():
        got = rec.interpolation[0].val_accuracy
        assert got == want if method in SAME_FORWARD else abs(got - want) <= one_image


@pytest.mark.parametrize("method", ["lora", "clip_adapter"])
def test_points_are_the_interpolated_models(swept, method):
    """``interpolation_points`` against each alpha's model built with ``interpolate`` and scored
    with ``accuracy`` split by split (pixels through the tower for LoRA, cached embeddings for
    CLIP-Adapter); at alpha = 1 the point handed in must be what that model scores."""
    from clipgap.interpolate import interpolate
    from clipgap.record import AlphaPoint
    from clipgap.study.runner import _scores, interpolation_points
    from clipgap.training import accuracy, finetune, training_splits

    _, ctx, cfg = swept
    run = next(r for r in plan_runs(cfg) if r.method == method)
    train = ctx.task(run.task, "train")
    result = finetune(ctx.backbone, train, run.resolved, train=run.train, progress=False)
    at_one = AlphaPoint(1.0, _scores(result.model, run, ctx), result.val_accuracy)
    zero_shot = swept[0][method].zero_shot
    points = interpolation_points(result.model, run, ctx, at_one=at_one, zero_shot=zero_shot)
    assert [p.alpha for p in points] == ALPHAS
    _, val = training_splits(train, run.train)
    for p in points:
        model = interpolate(result.model, ctx.backbone, p.alpha)

        def acc(task, model=model):
            return accuracy(model, task, batch_size=64, progress=False)

        # alpha = 0 holds the zero-shot model's scores: the same forward for LoRA; for
        # CLIP-Adapter logits within a few ulps of it, so at most one image may flip
        exact = p.alpha > 0 or method in SAME_FORWARD
        got = [p.scores.id, *p.scores.dg.values(), *p.scores.control.values(), p.val_accuracy]
        tasks = [ctx.task(s, "test") for s in (run.task, *run.dg, *run.controls)] + [val]
        for value, task in zip(got, tasks, strict=True):
            want = acc(task)
            if exact:
                assert value == want, (p.alpha, task.name)
            else:
                assert abs(value - want) <= 1.0 / len(task) + 1e-12, (p.alpha, task.name)


# ---------------------------------------------------------------------------------------------
# The report: selection on validation, claim 3 at the selected alphas
# ---------------------------------------------------------------------------------------------

N_TASKS = 8  # 2 / 2^8 < 0.05 / 4: a perfect sign pattern survives Holm over four comparisons


def point(alpha: float, zs: dict, *, d_id: float, cf: float, val: float) -> dict:
    """An interpolation point whose dID is ``d_id``, dDG half of it, CF ``cf``."""
    return {
        "alpha": alpha,
        "val_accuracy": val,
        "id": zs["id"] + d_id,
        "dg": {k: v + d_id / 2 for k, v in zs["dg"].items()},
        "control": {k: v + cf for k, v in zs["control"].items()},
    }


def curve(method: str, k: int) -> dict:
    """(dID, CF, validation accuracy) per alpha. LoRA: test ID best at 1, but validation best
    at 0.5, where it forgets nothing; the others: best at 1 on both, forgetting 0.01."""
    if method == "lora":
        return {0.0: (0.0, 0.0, 0.60), 0.5: (0.10, 0.01, 0.90), 1.0: (0.20 + k / 100, -0.05, 0.85)}
    gain = 0.16 + (k % 3) / 100  # not a line in ss
    return {0.0: (0.0, 0.0, 0.6), 0.5: (gain / 2, -0.005, 0.7), 1.0: (gain, -0.01 - k / 1000, 0.8)}


def frontier_records() -> list[dict]:
    records = []
    for k in range(N_TASKS):
        task = f"world:t{k}"
        ss = 0.3 + 0.05 * k
        difficulty = {"silhouette_modality": ss, "acs": 0.2, "zero_shot_accuracy": 0.5}
        difficulty |= {"silhouette_class": 0.1, "modality_gap": 0.8, "n_images": 100}
        difficulty["n_classes"] = 5
        zs = {"id": 0.5, "dg": {f"{task}@sketch": 0.4}, "control": {"world:other": 0.6}}
        for method in PAPER_METHODS:
            points = [
                point(a, zs, d_id=d, cf=c, val=v) for a, (d, c, v) in curve(method, k).items()
            ]
            end = points[-1]
            ft = {"id": end["id"], "dg": end["dg"], "control": end["control"]}
            rec = make_record(task, method, 0, difficulty=difficulty, zs=zs, ft=ft)
            rec.update(interpolation=points, val_accuracy=end["val_accuracy"])
            records.append(rec)
    return records


@pytest.fixture(scope="module")
def frontier_study(tmp_path_factory) -> Path:
    study = write_study(tmp_path_factory.mktemp("frontier") / "s", frontier_records())
    build_report(study)
    return study


def test_selection_follows_validation_not_test(frontier_study):
    frontier = analyse(load_study(frontier_study)).frontier
    chosen = frontier.selected.set_index(["unit", "arm"])["alpha"]
    for k in range(N_TASKS):
        assert chosen[(f"world:t{k}", "lora")] == 0.5  # test ID is best at 1
        for method in PAPER_METHODS[:3]:
            assert chosen[(f"world:t{k}", method)] == 1.0


def test_selection_ties_go_to_the_smaller_alpha():
    points = pd.DataFrame(
        {
            "run_id": ["a"] * 3 + ["b"] * 3,
            "alpha": [0.0, 0.5, 1.0] * 2,
            "val_accuracy": [0.5, 0.8, 0.8, 0.7, math.nan, 0.6],
        }
    )
    assert select_alphas(points).set_index("run_id")["alpha"].to_dict() == {"a": 0.5, "b": 0.0}


def test_claim_3_at_selected_alphas_uses_those_points(frontier_study):
    analysis = analyse(load_study(frontier_study))
    frontier = analysis.frontier
    cells = frontier.cells.set_index(["unit", "arm"])
    for k in range(N_TASKS):
        for method in PAPER_METHODS:
            alpha = 0.5 if method == "lora" else 1.0
            d_id, cf, _ = curve(method, k)[alpha]
            assert cells.at[(f"world:t{k}", method), "delta_id"] == pytest.approx(d_id)
            assert cells.at[(f"world:t{k}", method), "cf"] == pytest.approx(cf)
            assert cells.at[(f"world:t{k}", method), "delta_dg"] == pytest.approx(d_id / 2)
    at_one = {c.key: c.status for c in analysis.claims}
    at_selected = {c.key: c.status for c in frontier.claims}
    # LoRA forgets most at alpha = 1 on every task, least at its selected alpha on every task
    assert at_one["3b"] == Status.DOES_NOT_HOLD
    assert at_selected["3b (selected α)"] == Status.HOLDS
    assert not frontier.equal_footing  # the runs chose epoch and alpha on one validation split


def test_equal_footing_needs_split_validation_on_every_scored_run():
    from types import SimpleNamespace

    from clipgap.report.frontier import SPLIT_VALIDATION, equal_footing

    def run(selection, points=(1,)):
        eval_cfg = {"alpha_selection": selection} if selection else {}
        return SimpleNamespace(interpolation=points, config={"eval": eval_cfg})

    assert equal_footing([run(SPLIT_VALIDATION), run(SPLIT_VALIDATION), run(None, points=())])
    assert not equal_footing([run(SPLIT_VALIDATION), run(None)])
    assert not equal_footing([run(None, points=())])  # nothing scored along alpha


def test_cf_at_half_gain_by_formula():
    line = pd.DataFrame({"alpha": [0, 0.5, 1], "delta_id": [0, 0.1, 0.3], "cf": [0, -0.02, -0.1]})
    # 0.15 is reached a quarter of the way from alpha 0.5 to 1
    assert half_gain(line) == pytest.approx((0.625, -0.02 + 0.25 * -0.08))
    flat = line.assign(delta_id=[0, 0.1, -0.01])
    assert all(math.isnan(v) for v in half_gain(flat))


def test_frontier_relation_to_difficulty(frontier_study):
    frontier = analyse(load_study(frontier_study)).frontier
    full = frontier.at_gain[frontier.at_gain["arm"] == "full"].sort_values("unit")
    ss = [0.3 + 0.05 * k for k in range(N_TASKS)]
    # full: dID(0.5) is exactly half of dID(1), so CF is read at alpha 0.5
    assert full["alpha_half"].tolist() == pytest.approx([0.5] * N_TASKS)
    assert full["cf_half"].tolist() == pytest.approx([-0.005] * N_TASKS)
    lora = frontier.at_gain[frontier.at_gain["arm"] == "lora"].sort_values("unit")
    want = []
    for k in range(N_TASKS):
        d1 = 0.20 + k / 100
        t = (d1 / 2 - 0.10) / (d1 - 0.10)
        want.append(0.01 + t * (-0.05 - 0.01))
    assert lora["cf_half"].tolist() == pytest.approx(want)
    rho = frontier.relations.set_index("arm").at["lora", "spearman_rho"]
    assert rho == pytest.approx(sps.spearmanr(ss, want)[0])


def test_report_has_frontier_section_and_figures(frontier_study):
    md = (frontier_study / "report" / "report.md").read_text()
    section = md.split("## Gain against forgetting along interpolation", 1)[1].split("\n## ")[0]
    assert "highest accuracy on the run's validation split" in section
    assert "| 3b | does not hold | holds |" in section
    assert "come out differently at the selected alphas for 3b (does not hold → holds)" in section
    # exploratory, never a second verdict; and the report says the choice was not on equal
    # footing (these runs scored every alpha on the validation split that chose the epoch)
    assert "Exploratory, not a verdict: claim 3 is decided at one pre-stated setting, α = 1" in (
        section
    )
    assert "not chosen on equal footing" in section and "**Claim 3b" not in section
    assert "*3b (selected α), exploratory*: the test gives holds." in section
    figures = frontier_study / "report" / "figures"
    for name in ("frontier_mean.png", "frontier_id_by_task.png", "frontier_dg_by_task.png"):
        assert (figures / name).read_bytes().startswith(b"\x89PNG")
        assert f"(figures/{name})" in md
    assert "## Which difficulty measure predicts the outcomes" in md


def test_no_points_no_frontier_section():
    md = (FIXTURE.parent / "report_golden.md").read_text()
    assert "along interpolation" not in md and "frontier" not in md
    assert "## Which difficulty measure predicts the outcomes" in md


def loto_error(x: np.ndarray, y: np.ndarray) -> float:
    """Mean |y_i - prediction without task i|: a least-squares line, or the mean of the other
    tasks when x is constant (the line is then flat)."""
    errors = []
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        if np.ptp(x[keep]) == 0:
            guess = y[keep].mean()
        else:
            slope, intercept = np.polyfit(x[keep], y[keep], 1)
            guess = slope * x[i] + intercept
        errors.append(abs(guess - y[i]))
    return float(np.mean(errors))


def test_measure_sentence_names_the_best_measure(frontier_study):
    """The measure ranking agrees with LOTO errors computed here directly: ss varies over the
    tasks, every other measure is constant (a flat line: the difficulty-free baseline)."""
    analysis = analyse(load_study(frontier_study))
    (ranking,) = analysis.measures
    best = ranking.comparison.ranking("delta_id")[0]
    ss = np.array([0.3 + 0.05 * k for k in range(N_TASKS)])
    flat = np.zeros(N_TASKS)
    by_method = [np.array([curve(m, k)[1.0][0] for k in range(N_TASKS)]) for m in PAPER_METHODS]
    with_ss = np.mean([loto_error(ss, y) for y in by_method])
    without = np.mean([loto_error(flat, y) for y in by_method])
    assert with_ss < without  # LoRA's gain is a line in ss
    assert best.measure == "silhouette_modality"
    assert best.loto_mae == pytest.approx(with_ss, abs=1e-12)
    assert best.baseline_mae == pytest.approx(without, abs=1e-12)
    md = (frontier_study / "report" / "report.md").read_text()
    percent = 100 * (without - with_ss) / without
    lower = f"{percent:.1f}%" if percent < 10 else f"{percent:.0f}%"
    lower += " lower than each method's mean"
    assert f"**dID**: `silhouette_modality` predicted best (LOTO error {with_ss:.4f}" in md
    assert lower in md


def test_prepared_splits_are_shared_within_the_budget(swept, monkeypatch):
    """A context prepares each test split once for all its runs while the kept splits fit in
    PREPARED_BUDGET_MB; past it each call prepares the split anew, with the same scores."""
    from clipgap.study import context as context_module
    from clipgap.study.context import RunContext
    from clipgap.training import accuracy, zero_shot_model
    from clipgap.training.evaluate import split_accuracy

    _, _, cfg = swept
    ctx = RunContext.for_study(cfg, Path(cfg.out), progress=False)
    first = ctx.prepared("world:shape", "test", embedded=False)
    assert ctx.prepared("world:shape", "test", embedded=False) is first
    assert first.x is not None and ctx._prepared_mb > 0
    monkeypatch.setattr(context_module, "PREPARED_BUDGET_MB", ctx._prepared_mb)
    other = ctx.prepared("world:light", "test", embedded=False)
    assert ctx.prepared("world:light", "test", embedded=False) is not other
    model = zero_shot_model(ctx.backbone)
    model.requires_grad_(True)  # score through the tower, as for a model that trains it
    assert not model.image_tower_frozen
    for data in (first, other):
        assert split_accuracy(model, data) == accuracy(model, data.task, progress=False)
