"""Studies over several models: the models axis (planning, hashes, bad input), control tasks on a
cap of their own, and the report's cross-model section on synthetic records of a dial (known
Kendall taus), the class-count confound and the controls table."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from clipgap.errors import ConfigError
from clipgap.report import build_report
from clipgap.report.dial import claim_reading, dial_of, measure_taus, outcome_means, outcome_trend
from clipgap.report.sections.confound import confound_rows
from clipgap.report.study import load_study
from clipgap.stats import partial_spearman
from clipgap.study.config import EvalConfig, load_study_config
from clipgap.study.plan import plan_runs
from tests.test_report import make_record, write_study

TINY = "world-tiny"
VARIANT = "world-tiny:mention_rates.texture=0"


def _study(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


BODY = "tasks: [{name: 'world:color', controls: []}]\nmethods: [lora]\n"


def test_models_axis_is_outermost_and_each_run_names_its_model(tmp_path):
    cfg = load_study_config(str(_study(tmp_path, f"models: [{TINY}, '{VARIANT}']\n{BODY}")))
    runs = plan_runs(cfg)
    assert [r.model for r in runs] == [TINY, VARIANT]
    assert [r.config()["model"] for r in runs] == [TINY, VARIANT]
    assert runs[0].run_id != runs[1].run_id


def test_one_model_keeps_its_run_hashes(tmp_path):
    one = load_study_config(str(_study(tmp_path, f"model: {TINY}\n{BODY}")))
    listed = load_study_config(str(_study(tmp_path, f"models: [{TINY}]\n{BODY}")))
    assert [r.run_id for r in plan_runs(one)] == [r.run_id for r in plan_runs(listed)]
    assert "models" not in one.identity()  # a study naming one model keeps its identity


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (f"model: {TINY}\nmodels: [{TINY}]\n", "study.yaml: model and models are both given"),
        ("models: []\n", "study.yaml: models: an empty list"),
        (f"models: [{TINY}, {TINY}]\n", f"study.yaml: models: {TINY} listed more than once"),
    ],
)
def test_bad_models_input_is_one_line(tmp_path, head, message):
    with pytest.raises(ConfigError) as err:
        load_study_config(str(_study(tmp_path, head + BODY)))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_dry_run_rows_carry_the_model(tmp_path, capsys):
    import json

    from clipgap.cli import main

    path = _study(tmp_path, f"models: [{TINY}, '{VARIANT}']\n{BODY}")
    assert main(["study", "--config", str(path), "--dry-run", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    assert [r["model"] for r in rows] == [TINY, VARIANT]


def test_controls_have_a_cap_of_their_own():
    from clipgap.data import DataOptions
    from clipgap.study.context import CONTROL, RunContext

    ctx = RunContext(
        model=TINY, pretrained=None, device="cpu", options=DataOptions(), max_control_images=7
    )
    full = len(ctx.task("world:color", "test"))
    assert full > 7 and len(ctx.task("world:color", CONTROL)) == 7
    plain = RunContext(model=TINY, pretrained=None, device="cpu", options=DataOptions())
    assert len(plain.task("world:color", CONTROL)) == full
    with pytest.raises(ConfigError, match="eval.max_control_images must be >= 1"):
        EvalConfig(max_control_images=0)


# ---- the dial ----------------------------------------------------------------------------
LEVELS = (0.0, 0.1, 0.5, 1.0)
# per task: ss and ACS at each level (ranks chosen for known taus), and whether dID follows
DIAL_TASKS = {
    "world:texture": ([0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]),  # tau ss -1, ACS +1
    "world:count_texture": ([0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.3, 0.4]),  # +1, +2/3
    "world:color": ([0.2, 0.2, 0.2, 0.2], [0.3, 0.4, 0.2, 0.1]),  # a control: NaN, -2/3
}


def _dial_records() -> list[dict]:
    records = []
    for task, (ss, acs) in DIAL_TASKS.items():
        for k, level in enumerate(LEVELS):
            model = f"world:mention_rates.texture={level:g}"
            difficulty = {
                "silhouette_modality": ss[k], "silhouette_class": 0.1, "acs": acs[k],
                "zero_shot_accuracy": 0.5, "modality_gap": 0.8, "n_images": 100,
                "n_classes": 4 + 2 * len(task),
            }  # fmt: skip
            zs = {"id": 0.5, "dg": {f"{task}@sketch": 0.4}, "control": {"world:shape": 0.6}}
            for m, method in enumerate(("full", "aclip", "bitfit", "lora", "clip_adapter")):
                gain = 0.1 * m + 0.2 * level  # dID rises with the dial for every method
                ft = {"id": 0.5 + gain, "dg": {f"{task}@sketch": 0.4 + gain / 2},
                      "control": {"world:shape": 0.6 - 0.01 * m}}  # fmt: skip
                rec = make_record(task, method, 0, difficulty=difficulty, zs=zs, ft=ft)
                rec["model"] = model
                rec["run_id"] = f"{rec['run_id']}-{k}"
                rec["config"] = copy.deepcopy(rec["config"]) | {"controls": ["world:shape"]}
                records.append(rec)
    return records


@pytest.fixture(scope="module")
def dial_study(tmp_path_factory) -> Path:
    return write_study(tmp_path_factory.mktemp("dial"), _dial_records())


def test_dial_of_names_the_one_setting():
    dial = dial_of([f"world:mention_rates.texture={v:g}" for v in LEVELS])
    assert dial.key == "mention_rates.texture" and dial.attribute == "texture"
    assert sorted(dial.values.values()) == list(LEVELS)
    assert dial_of(["world", "world:mention_rates.texture=0"]) is None
    assert dial_of(["world:mention_rates.texture=0", "world:mention_rates.color=0"]) is None
    assert dial_of(["world:mention_rates.texture=0"]) is None


def test_measure_taus_and_claim_reading(dial_study):
    records = load_study(dial_study).complete
    dial = dial_of({r.model for r in records})
    taus = measure_taus(records, dial).set_index("task")
    assert taus.loc["world:texture", "silhouette_modality"] == pytest.approx(-1.0)
    assert taus.loc["world:texture", "acs"] == pytest.approx(1.0)
    assert taus.loc["world:count_texture", "acs"] == pytest.approx(2 / 3)
    assert math.isnan(taus.loc["world:color", "silhouette_modality"])  # a constant measure
    assert taus.loc["world:color", "acs"] == pytest.approx(-2 / 3)
    assert list(taus["uses"]) == [False, True, True]  # sorted: color, count_texture, texture
    claim = claim_reading(taus.reset_index())
    assert claim["n"] == 2 and claim["ss_abs"] == pytest.approx(1.0)
    assert claim["acs_abs"] == pytest.approx(5 / 6)
    assert (claim["ss_better"], claim["acs_better"]) == (1, 0)
    assert (claim["ss_expected"], claim["acs_expected"]) == (1, 2)


def test_outcomes_against_the_dial(dial_study):
    records = load_study(dial_study).complete
    dial = dial_of({r.model for r in records})
    means = outcome_means(records, dial)
    lora = means[(means["method"] == "lora") & (means["outcome"] == "delta_id")]
    assert list(lora["value"]) == list(LEVELS)
    assert list(lora["n_tasks"]) == [2] * 4  # the control task (color) is left out
    assert np.allclose(lora["mean"], [0.3 + 0.2 * v for v in LEVELS])
    trend = outcome_trend(means).set_index(["method", "outcome"])["tau"]
    assert trend[("full", "delta_id")] == pytest.approx(1.0)
    assert math.isnan(trend[("full", "cf")])  # CF does not move with the dial here


def test_report_of_several_models(dial_study):
    md = build_report(dial_study).read_text()
    for level in LEVELS:
        assert f"## Model `world:mention_rates.texture={level:g}`" in md
    assert md.count("### Task difficulty") == len(LEVELS)
    assert "### Measures against known misalignment" in md
    assert "| `world:texture` | yes | 4 | -1.00 | +1.00 |" in md
    assert "|τ(ss)| > |τ(ACS)| on 1 of 2 tasks" in md
    figures = dial_study / "report" / "figures"
    assert (figures / "dial_outcomes.png").is_file()
    assert (figures / "model-0" / "difficulty_vs_delta_id.png").is_file()


# ---- the class-count confound ------------------------------------------------------------
def test_partial_spearman_is_the_rank_residual_correlation():
    rng = np.random.default_rng(3)
    z = rng.normal(size=30)
    x, y = z + rng.normal(size=30), z + rng.normal(size=30)
    rx, ry, rz = (sps.rankdata(v) for v in (x, y, z))
    res = [r - np.polyval(np.polyfit(rz, r, 1), rz) for r in (rx, ry)]
    assert partial_spearman(x, y, z) == pytest.approx(np.corrcoef(*res)[0, 1])
    assert math.isnan(partial_spearman(x, y, x))  # z explains x entirely


def test_confound_rows_from_given_tasks():
    import pandas as pd

    difficulty = pd.DataFrame({
        "silhouette_modality": [0.1, 0.2, 0.3, 0.4], "acs": [0.4, 0.3, 0.2, 0.1],
        "zero_shot_accuracy": [0.9, 0.5, 0.7, 0.2], "n_classes": [2, 4, 8, 16],
    })  # fmt: skip
    means = difficulty.assign(delta_id=[0.1, 0.3, 0.2, 0.4])
    rows = {r["measure"]: r for r in confound_rows(difficulty, means)}
    assert rows["silhouette_modality"]["rho_classes"] == pytest.approx(1.0)
    assert rows["acs"]["rho_classes"] == pytest.approx(-1.0)
    assert rows["zero_shot_accuracy"]["rho_classes"] == pytest.approx(-0.8)
    assert rows["silhouette_modality"]["rho_did"] == pytest.approx(0.8)
    assert math.isnan(rows["silhouette_modality"]["partial"])  # ss is the class count here


def test_report_states_the_confound_and_the_controls(dial_study):
    md = build_report(dial_study).read_text()
    assert "Confound: Spearman(ss (modality), number of classes) = " in md
    assert "| `world:texture` | `world:shape` |" in md
