"""Recommending a method for a new task: predictions, intervals, ranking, LOTO quality against the
difficulty-free baseline, bad input, and the `clipgap recommend` command."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from clipgap.cli import main
from clipgap.errors import ConfigError, DataError, ModelError, UnknownNameError
from clipgap.predict import parse_objective, recommend_from_difficulty
from clipgap.predict.honest import NestedOptions
from clipgap.predict.objective import check_objective
from clipgap.record import Difficulty, write_record
from tests.test_predict import make_record

LINES = {  # method -> (dID, dDG, CF) as (intercept, slope) on silhouette_modality
    "full": ((0.5, -0.4), (0.1, -0.1), (-0.2, 0.1)),
    "lora": ((0.1, 0.2), (0.05, 0.05), (-0.02, 0.0)),
}


def crossing_study(*, xs=(0.2, 0.3, 0.45, 0.55, 0.7, 0.8), signal=True, noise=0.01, rng=0,
                   dg=True, model="world-tiny"):  # fmt: skip
    """Two methods whose lines cross: full is best on low ss, lora on high ss; 2 seeds."""
    rng = np.random.default_rng(rng)
    records = []
    for t, x in enumerate(xs):
        measures = {"silhouette_modality": x, "acs": float(rng.uniform(0, 1))}
        for method, lines in LINES.items():
            for seed in range(2):
                at = x if signal else 0.5
                d_id, d_dg, cf = (a + b * at + rng.normal(0, noise) for a, b in lines)
                records.append(
                    make_record(f"world:t{t}", method, seed, measures, zs=0.3, d_id=d_id,
                                d_dg=d_dg if dg else None, cf=cf, model=model)
                )  # fmt: skip
    return records


def new_task(x: float, split: str = "train", acs: float = 0.5) -> Difficulty:
    return Difficulty(n_images=10, n_classes=3, split=split, silhouette_modality=x, acs=acs)


def _mean_change(before: dict, after: dict) -> float:
    """Mean of after - before over the datasets scored both times (the oracle of dDG / CF)."""
    return float(np.mean([after[k] - before[k] for k in before if k in after]))


def seed_mean_lines(records, measure="silhouette_modality"):
    """Direct per-(method, outcome) task arrays: x, y (seed means), for the oracle fits."""
    out = {}
    for method in LINES:
        tasks = sorted({r.task for r in records if r.method == method})
        mine = [r for r in records if r.method == method]
        x = np.array(
            [next(r for r in mine if r.task == t).difficulty.value(measure) for t in tasks]
        )
        for key, get in (("id", lambda r: r.finetuned.id - r.zero_shot.id),
                         ("dg", lambda r: _mean_change(r.zero_shot.dg, r.finetuned.dg)),
                         ("cf", lambda r: _mean_change(r.zero_shot.control, r.finetuned.control))):  # fmt: skip
            y = np.array([np.mean([get(r) for r in mine if r.task == t]) for t in tasks])
            out[(method, key)] = (x, y)
    return out


@pytest.mark.parametrize("x0,best", [(0.25, "full"), (0.75, "lora")])
def test_recommend_picks_the_method_whose_line_predicts_best(x0, best):
    records = crossing_study()
    rec = recommend_from_difficulty(new_task(x0), records, measure="silhouette_modality")
    assert rec.best == best and set(rec.ranking) == set(LINES)
    data = seed_mean_lines(records)
    for p in rec.predictions:
        score = baseline = 0.0
        for key, outcome in (("id", "delta_id"), ("dg", "delta_dg"), ("cf", "cf")):
            x, y = data[(p.method, key)]
            slope, intercept = np.polyfit(x, y, 1)
            got = p.get(outcome)
            assert got.value == pytest.approx(slope * x0 + intercept, abs=1e-12)
            n, resid = len(x), y - (slope * x + intercept)
            s = math.sqrt(resid @ resid / (n - 2))
            sxx = ((x - x.mean()) ** 2).sum()
            half = stats.t.ppf(0.95, n - 2) * s * math.sqrt(1 + 1 / n + (x0 - x.mean()) ** 2 / sxx)
            assert (got.low, got.high) == (
                pytest.approx(got.value - half),
                pytest.approx(got.value + half),
            )
            score += got.value
            baseline += y.mean()
        assert p.score == pytest.approx(score)
        assert p.baseline_score == pytest.approx(baseline)
    assert rec.level == 0.9 and rec.measure_chosen == "given" and not rec.warnings
    # at the mean ss (0.5) full's lines sum to 0.3 + 0.05 - 0.15, lora's to 0.2 + 0.075 - 0.02
    assert rec.baseline_best == "lora"


def direct_quality(records, weights):
    """Hits and mean regret of LOTO line picks and baseline picks, by a plain loop."""
    data = seed_mean_lines(records)
    x = data[("full", "id")][0]
    n = len(x)
    hits = base_hits = 0
    regret = base_regret = 0.0
    for i in range(n):
        keep = np.arange(n) != i
        pred, base, true = {}, {}, {}
        for m in LINES:
            pred[m] = base[m] = true[m] = 0.0
            for key, w in weights.items():
                y = data[(m, key)][1]
                slope, intercept = np.polyfit(x[keep], y[keep], 1)
                pred[m] += w * (slope * x[i] + intercept)
                base[m] += w * y[keep].mean()
                true[m] += w * y[i]
        top = max(true.values())
        pick, bpick = max(pred, key=pred.get), max(base, key=base.get)
        hits += true[pick] == top
        base_hits += true[bpick] == top
        regret += top - true[pick]
        base_regret += top - true[bpick]
    return hits, base_hits, regret / n, base_regret / n


def test_loto_quality_matches_a_direct_loop_and_beats_the_baseline():
    # one given measure and the mean baseline: nested LOTO is then the plain loop
    records = crossing_study()
    rec = recommend_from_difficulty(
        new_task(0.5), records, objective={"id": 1, "cf": 0.75}, measure="silhouette_modality",
        options=NestedOptions(baselines=("mean",)),
    )  # fmt: skip
    q = rec.quality
    hits, base_hits, regret, base_regret = direct_quality(records, {"id": 1.0, "cf": 0.75})
    assert (q.hits, q.baseline_hits) == (hits, base_hits) and q.n_tasks == 6
    assert q.regret == pytest.approx(regret) and q.baseline_regret == pytest.approx(base_regret)
    assert set(rec.outcome_mae) == {"delta_id", "cf"}  # dg has weight 0: not used
    assert rec.measure == "silhouette_modality" and rec.measure_chosen == "given"
    assert q.beats_baseline and q.hits > q.baseline_hits and q.p_value < 0.05
    assert q.verdict().startswith("beats the difficulty-free baseline") and "p = " in q.verdict()


def test_the_procedure_chooses_among_measures_and_pairs_and_names_what_it_left_out():
    records = crossing_study()
    rec = recommend_from_difficulty(new_task(0.5), records, objective={"id": 1, "cf": 0.75})
    assert rec.measure_chosen == "nested" and rec.quality.n_candidates == 3
    assert {m for m, _ in rec.candidates} == {
        "silhouette_modality", "acs", "ridge(silhouette_modality+acs)"
    }  # fmt: skip
    assert rec.quality.best == rec.candidates[0][0]
    assert "silhouette_modality" in rec.measure and rec.quality.beats_baseline
    (left,) = [w for w in rec.warnings if w.startswith("not considered")]
    assert "silhouette_class" in left and "probe_accuracy" in left


def test_the_verdict_flips_when_difficulty_carries_no_signal():
    records = crossing_study(signal=False, noise=0.03, rng=1)
    rec = recommend_from_difficulty(new_task(0.5), records, measure="silhouette_modality")
    assert not rec.quality.beats_baseline
    assert rec.quality.verdict().startswith("does not beat the difficulty-free baseline")
    assert "permutation p = " in rec.quality.verdict()


def test_too_few_tasks_is_refused_with_the_number_needed():
    with pytest.raises(DataError, match="4 task.*at least 5 tasks per method .nested"):
        recommend_from_difficulty(new_task(0.5), crossing_study(xs=(0.2, 0.4, 0.5, 0.8)))


def test_tasks_missing_for_one_method_are_left_out():
    records = [r for r in crossing_study() if not (r.method == "lora" and r.task == "world:t0")]
    rec = recommend_from_difficulty(new_task(0.5), records)
    assert rec.tasks == ("world:t1", "world:t2", "world:t3", "world:t4", "world:t5")


def test_outside_the_studied_range_warns():
    for x in (2.0, 0.81):  # far outside, and just outside [0.2, 0.8]
        rec = recommend_from_difficulty(
            new_task(x), crossing_study(), measure="silhouette_modality"
        )
        (warning,) = [w for w in rec.warnings if "outside" in w]
        assert "outside the studied range [0.2, 0.8]: the predictions extrapolate" in warning
    inside = recommend_from_difficulty(
        new_task(0.8), crossing_study(), measure="silhouette_modality"
    )
    assert not [w for w in inside.warnings if "outside" in w]  # the range's own end


def test_an_outcome_missing_from_the_study_leaves_the_objective():
    records = crossing_study(dg=False)
    rec = recommend_from_difficulty(new_task(0.5), records)
    assert any("dDG is not measured" in w for w in rec.warnings)
    assert [o.outcome for o in rec.predictions[0].outcomes] == ["delta_id", "cf"]
    with pytest.raises(DataError, match="no outcome of the objective"):
        recommend_from_difficulty(new_task(0.5), records, objective={"dg": 1})


def test_bad_objective_measure_and_split():
    records = crossing_study()
    with pytest.raises(
        UnknownNameError, match="unknown objective key 'ood'.*valid keys: id, dg, cf"
    ):
        check_objective({"ood": 1})
    with pytest.raises(ConfigError, match="all zero"):
        parse_objective("id=0,cf=0")
    with pytest.raises(ConfigError, match="dg='high' is not a number"):
        parse_objective("id=1,dg=high")
    with pytest.raises(ConfigError, match="not a finite number"):
        parse_objective("id=nan")
    with pytest.raises(ConfigError, match="not a number"):
        check_objective({"id": "1"})
    assert parse_objective("cf=2") == {"id": 0.0, "dg": 0.0, "cf": 2.0}
    with pytest.raises(UnknownNameError, match="did you mean 'acs'.*choose from silhouette_mod"):
        recommend_from_difficulty(new_task(0.5), records, measure="acss")
    with pytest.raises(DataError, match="measure logme is not recorded on every study task"):
        recommend_from_difficulty(new_task(0.5), records, measure="logme")
    with pytest.raises(DataError, match="on the train split, the new task's is on the test"):
        recommend_from_difficulty(new_task(0.5, split="test"), records)


def test_recommendation_json_round_trip():
    rec = recommend_from_difficulty({"silhouette_modality": 0.3}, crossing_study())
    data = json.loads(json.dumps(rec.to_dict()))
    assert data["ranking"][0] == "full" and data["interval_level"] == 0.9
    assert set(data["predictions"][0]) == {"method", "score", "baseline_score", "dID", "dDG", "CF"}
    quality = data["quality"]
    assert quality["n_tasks"] == 6 and data["measure"] in dict(rec.candidates)
    assert {"nested_mae", "hits", "regret", "baselines", "p_value", "beats_baseline",
            "coverage"} <= set(quality)  # fmt: skip
    assert set(quality["baselines"]) == {"mean", "n_classes", "log_n_classes"}
    assert 0 < quality["p_value"] <= 1 and 0 <= quality["coverage"]["ols"] <= 1
    assert isinstance(data["warnings"], list)


def test_difficulty_is_measured_on_the_images_the_study_used(tiny, image_folder, one_thread):
    from clipgap.data import load_task
    from clipgap.difficulty import measure_difficulty
    from clipgap.predict import recommend

    holdout = {"val_fraction": 0.25, "val_max": 5000, "val_seed": 3}
    records = [
        r.with_updates(model=tiny.spec, config={"pretrained": None, "train": holdout})
        for r in crossing_study()
    ]
    task = load_task(f"folder:{image_folder}", "train")  # 3 classes x 6 images
    rec = recommend(tiny, task, records, measure="silhouette_modality", cache=False)
    # the training portion: the train split minus 25% held out for validation with val_seed
    order = np.random.default_rng(3).permutation(18)
    fit = task.subset(np.sort(order[round(0.25 * 18) :]), split="train-fit")
    expected = measure_difficulty(tiny, fit, cache=False, progress=False)
    assert rec.n_images == 18 - 4 == len(fit)
    assert rec.measure_value == pytest.approx(expected["silhouette_modality"])
    whole = measure_difficulty(tiny, task, cache=False, progress=False)["silhouette_modality"]
    assert rec.measure_value != pytest.approx(whole)
    with pytest.raises(DataError, match="is its test split; the study measured difficulty on"):
        recommend(tiny, load_task(f"folder:{image_folder}", "test"), records)
    other = [r.with_updates(model="ViT-B-32") for r in records]
    with pytest.raises(ModelError, match="differs from the study's 'ViT-B-32'"):
        recommend(tiny, task, other)


# ---- the command line ------------------------------------------------------------------------
# Fast tests use the tiny random-init CLIP on a folder task; the slow test runs a real study.

STUDY_TASKS = ("world:color", "world:count", "world:light", "world:position", "world:texture")


def write_study(out, records, *, names=STUDY_TASKS, model="clipgap-tiny"):
    rename = {f"world:t{i}": name for i, name in enumerate(names)}
    for r in records:
        r = r.with_updates(
            task=rename[r.task], model=model, run_id=r.run_id.replace(r.task, rename[r.task])
        )
        write_record(out / "runs" / r.run_id.replace(":", "-"), r)
    return out


@pytest.fixture
def study_dir(tmp_path):
    """Synthetic records of five tasks for clipgap-tiny, in a study directory."""
    return write_study(tmp_path / "study", crossing_study(xs=(0.2, 0.3, 0.45, 0.55, 0.7)))


def test_cli_recommend_prints_predictions_ranking_and_quality(
    tmp_path, image_folder, capsys, one_thread
):
    dataset = f"folder:{image_folder}"
    assert main(["difficulty", "--model", "clipgap-tiny", "--dataset", dataset, "--split",
                 "train", "--json", str(tmp_path / "d.json")]) == 0  # fmt: skip
    x0 = json.loads((tmp_path / "d.json").read_text())["silhouette_modality"]
    xs = tuple(x0 + d for d in (-0.3, -0.2, -0.05, 0.05, 0.2))
    study = write_study(tmp_path / "study", crossing_study(xs=xs))
    argv = ["recommend", "--model", "clipgap-tiny", "--dataset", dataset, "--from", str(study)]
    capsys.readouterr()
    assert main([*argv, "--measure", "silhouette_modality", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)  # --json alone: only JSON on stdout
    assert data["measure_value"] == pytest.approx(x0)  # the train split, as in the study
    assert data["split"] == "train" and data["study_tasks"] == sorted(STUDY_TASKS)
    truth = {m: sum(a + b * x0 for a, b in lines) for m, lines in LINES.items()}
    assert data["warnings"] == [] and data["ranking"][0] == max(truth, key=truth.get)
    assert main([*argv, "--objective", "id=1", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    for text in ("predicted outcomes, 90% intervals", "nested leave-one-task-out, 5 tasks",
                 "best method picked: ", "objective: 1*dID", "LOTO coverage of 90% intervals",
                 f"wrote {tmp_path / 'r.json'}", "the difficulty-free baseline (nested error",
                 "permutation p = "):  # fmt: skip
        assert text in out
    assert re.search(r"dID \[90% (ols|conformal)\]", out)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert f"recommended: {saved['ranking'][0]}" in out
    assert saved["objective"] == {"id": 1.0, "dg": 0.0, "cf": 0.0}


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--model", "world-tiny"], "differs from the study's model clipgap-tiny"),
        (["--pretrained", "x.pt"], r"--pretrained x.pt differs .* \(pretrained None\)"),
        (["--measure", "nope"], "unknown measure 'nope'.*choose from"),
        (["--objective", "id=1,forget=2"], "unknown objective key 'forget'.*valid keys"),
        (["--objective", "id=0"], "all zero"),
        (["--objective", "id=lots"], "id='lots' is not a number"),
        (["--permutations", "99"], "permutations=99 is too few.*>= 100"),
        (["--permutations", "1e3"], "--permutations '1e3' is not an integer"),
        (["--baselines", "mean,median"], "unknown baseline 'median'.*choose from mean, n_cl"),
        (["--measures", "acs,iim"], "unknown measure 'iim'.*choose from"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(study_dir, capsys, extra, message):
    argv = ["recommend", "--model", "clipgap-tiny", "--dataset", "world:shape"]
    if extra[0] == "--model":
        argv[2], extra = extra[1], []
    assert main([*argv, "--from", str(study_dir), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert re.search(message, err), err


def test_cli_refuses_empty_study_and_classless_task(tmp_path, study_dir, capsys):
    (tmp_path / "empty" / "runs" / "r1").mkdir(parents=True)
    argv = ["recommend", "--model", "clipgap-tiny", "--dataset", "world:shape"]
    assert main([*argv, "--from", str(tmp_path / "empty")]) == 2
    assert "has no complete run records (1 run directories, 0 finished)" in capsys.readouterr().err
    (tmp_path / "noclasses" / "train").mkdir(parents=True)
    argv = ["recommend", "--model", "clipgap-tiny", "--from", str(study_dir)]
    assert main([*argv, "--dataset", f"folder:{tmp_path / 'noclasses'}"]) == 2
    assert "no class subfolders" in capsys.readouterr().err


def test_cli_refuses_too_few_tasks(tmp_path, capsys):
    study = write_study(tmp_path, crossing_study(xs=(0.2, 0.5, 0.8)))
    argv = ["recommend", "--model", "clipgap-tiny", "--dataset", "world:shape", "--from"]
    assert main([*argv, str(study)]) == 2
    assert "needs at least 5 tasks per method" in capsys.readouterr().err


STUDY_YAML = """\
# tiny study for clipgap recommend: clipgap study --config study.yaml
model: world-tiny
tasks: [{name: "world:color"}, {name: "world:count"}, {name: "world:light"},
        {name: "world:position"}, {name: "world:texture"}]
methods: [bitfit, linear_probe]
train: {epochs: 1, max_steps: 3, batch_size: 32}
eval: {max_test_images: 48}
"""


@pytest.mark.slow
def test_end_to_end_real_study_then_recommend(tmp_path, capsys):
    from clipgap.predict import read_study
    from clipgap.record import RecordSchemaError

    (tmp_path / "study.yaml").write_text(STUDY_YAML)
    out = tmp_path / "out"
    argv = ["study", "--config", str(tmp_path / "study.yaml"), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    try:
        records = read_study(out)
    except RecordSchemaError as exc:
        pytest.skip(f"the study runner does not write the typed record yet: {exc}")
    assert len(records) == 10
    capsys.readouterr()
    argv = ["recommend", "--model", "world-tiny", "--dataset", "world:shape", "--from", str(out)]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["ranking"]) == {"bitfit", "linear_probe"} and data["split"] == "train"
    assert data["quality"]["n_tasks"] == 5 and "p_value" in data["quality"]


def test_a_measure_missing_on_some_study_task_is_left_out_and_said_once():
    records = [
        r.with_updates(difficulty=replace(r.difficulty, acs=None)) if r.task == "world:t2" else r
        for r in crossing_study()
    ]
    rec = recommend_from_difficulty(new_task(0.5), records)
    said = [w for w in rec.warnings if "acs" in w]
    assert len(said) == 1 and said[0].startswith("not considered (not measured on every study")
    assert {m for m, _ in rec.candidates} == {"silhouette_modality"}
