"""The record package: the one outcome computation (against hand-worked numbers), a record's
curve along alpha with both ends, the JSON keys of schema 2, the one study reader and its
report of corrupt runs, and the import direction of the record, study and stats packages."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from clipgap.errors import UnknownNameError
from clipgap.record import (
    OUTCOME_LABELS,
    OUTCOMES,
    PREDICTED_OUTCOMES,
    AlphaPoint,
    Difficulty,
    RecordSchemaError,
    RunRecord,
    Scores,
    compute_outcomes,
    parse_record,
    read_records,
    write_record,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "clipgap"
ZS = Scores(id=0.5, dg={"a": 0.4, "b": 0.6}, control={"c": 0.8, "e": 0.3})
FT = Scores(id=0.7, dg={"a": 0.5, "b": 0.5, "x": 0.9}, control={"c": 0.6, "d": 0.1, "e": 0.4})


def record(run_id: str = "r1", **changes) -> RunRecord:
    base = RunRecord(
        run_id=run_id, status="complete", task="world:shape", method="lora", seed=0,
        preset="tuned", model="world-tiny", config={"train": {}},
        difficulty=Difficulty(n_images=10, n_classes=2, split="train", acs=0.3),
        zero_shot=ZS, finetuned=FT, best_epoch=1, val_accuracy=0.66,
    )  # fmt: skip
    return base.with_updates(**changes)


def test_outcomes_against_hand_worked_numbers():
    out = compute_outcomes(ZS, FT)
    # dID = 0.7 - 0.5; domains a, b scored both times (x only after): +0.1, -0.1 -> mean 0
    assert out.delta_id == pytest.approx(0.2)
    assert out.delta_dg_per_domain == pytest.approx({"a": 0.1, "b": -0.1})
    assert out.delta_dg == pytest.approx(0.0, abs=1e-15)
    # controls c, e scored both times (d only after): -0.2, +0.1 -> mean -0.05
    assert out.cf_per_control == pytest.approx({"c": -0.2, "e": 0.1})
    assert out.cf == pytest.approx(-0.05)
    # the normalised gain: 0.2 of the 0.5 zero-shot error removed
    assert out.gain_norm == pytest.approx(0.4)
    assert [out.value(o) for o in PREDICTED_OUTCOMES] == [
        out.delta_id, out.delta_dg, out.cf, out.gain_norm,
    ]  # fmt: skip
    with pytest.raises(UnknownNameError, match="unknown outcome 'cf_mean'; choose from"):
        out.value("cf_mean")


def test_undefined_outcomes_are_none_never_zero():
    solved = compute_outcomes(Scores(id=1.0), Scores(id=0.9))
    assert solved.delta_id == pytest.approx(-0.1)
    assert solved.delta_dg is None and solved.cf is None and solved.gain_norm is None
    assert solved.delta_dg_per_domain == {} and solved.cf_per_control == {}


def test_one_spelling_and_labels():
    assert OUTCOMES == ("delta_id", "delta_dg", "cf")
    assert PREDICTED_OUTCOMES == ("delta_id", "delta_dg", "cf", "gain_norm")
    assert [OUTCOME_LABELS[o] for o in PREDICTED_OUTCOMES] == ["dID", "dDG", "CF", "dID/(1-zs)"]
    from clipgap.report.labels import OUTCOMES as REPORT_OUTCOMES

    assert REPORT_OUTCOMES is OUTCOMES


def test_json_keeps_schema_2_keys_and_reads_back():
    rec = record()
    data = rec.to_dict()
    assert data["cf"] == pytest.approx({"c": -0.2, "e": 0.1})  # per control, as schema 2
    assert data["cf_mean"] == pytest.approx(-0.05)  # the mean, as schema 2
    assert data["delta_dg_per_domain"] == pytest.approx({"a": 0.1, "b": -0.1})
    assert "gain_norm" not in data and "cf_per_control" not in data
    back = parse_record(json.loads(rec.to_json()))
    assert back == rec and back.outcomes == rec.outcomes
    data["cf_mean"] = 0.3
    with pytest.raises(Exception, match=r"key 'cf_mean' is 0.3; expected -0.05"):
        parse_record(data, path="x/record.json")


def test_curve_adds_the_ends_the_run_did_not_score():
    half = Scores(id=0.6, dg={"a": 0.45, "b": 0.55}, control={"c": 0.7, "e": 0.35})
    rec = record(interpolation=(AlphaPoint(0.5, half, 0.61),))
    zero, mid, one = rec.curve()
    assert (zero.alpha, mid.alpha, one.alpha) == (0.0, 0.5, 1.0)
    assert (zero.stored, mid.stored, one.stored) == (False, True, False)
    assert mid.outcomes.delta_id == pytest.approx(0.1) and mid.val_accuracy == 0.61
    assert mid.outcomes.cf == pytest.approx(((0.7 - 0.8) + (0.35 - 0.3)) / 2)
    assert one.outcomes == rec.outcomes and one.val_accuracy == 0.66
    # the zero-shot model changes nothing the run defines; no validation accuracy
    assert (zero.outcomes.delta_id, zero.outcomes.delta_dg, zero.outcomes.cf) == (0.0, 0.0, 0.0)
    assert zero.val_accuracy is None
    no_controls = record(
        finetuned=Scores(id=0.7, dg=FT.dg), interpolation=(AlphaPoint(0.5, half, None),)
    )
    assert no_controls.curve()[0].outcomes.cf is None  # undefined stays undefined
    # a stored end is kept as scored
    stored = record(interpolation=(AlphaPoint(0.0, ZS, 0.4), AlphaPoint(1.0, FT, 0.66)))
    assert [p.stored for p in stored.curve()] == [True, True]
    assert stored.curve()[0].val_accuracy == 0.4
    assert record().curve() == ()  # not scored along alpha


def test_read_records_reports_corrupt_runs_and_refuses_old_schemas(tmp_path):
    runs = tmp_path / "runs"
    assert read_records(tmp_path).finished == {}  # no runs folder: nothing, not an error
    write_record(runs / "good", record("good"))
    write_record(runs / "failed", record("failed", status="failed", error="E: x"))
    (runs / "running").mkdir()
    (runs / "no-record").mkdir()
    (runs / "no-record" / "DONE").write_text("complete\n")
    write_record(runs / "bad-key", record("bad-key"))
    text = (runs / "bad-key" / "record.json").read_text()
    (runs / "bad-key" / "record.json").write_text(text.replace('"seed": 0', '"seed": "0"'))
    found = read_records(tmp_path)
    assert list(found.finished) == ["failed", "good"]
    assert [r.run_id for r in found.complete] == ["good"]
    assert found.unfinished == ("running",)
    assert set(found.corrupt) == {"bad-key", "no-record"}
    assert "key 'seed' is '0'; expected an integer" in found.corrupt["bad-key"]
    assert "does not exist but its run directory holds DONE" in found.corrupt["no-record"]
    assert all("\n" not in why for why in found.corrupt.values())
    line = found.corrupt_line()
    assert "\n" not in line and line.startswith("leaving out 2 corrupt run records: bad-key: ")
    old = json.loads((runs / "good" / "record.json").read_text()) | {"schema": 1}
    (runs / "good" / "record.json").write_text(json.dumps(old))
    with pytest.raises(RecordSchemaError) as info:
        read_records(tmp_path)
    message = str(info.value)
    assert "\n" not in message and message.startswith("1 of the 4 finished runs in ")
    assert "record schema 1, but this clipgap reads schema 2" in message


def _imports(path: Path) -> set[str]:
    """Every clipgap module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("clipgap")}


def test_the_record_package_imports_one_way():
    order = ["values", "outcomes", "run", "parse", "files"]
    for i, name in enumerate(order):
        inside = {m.rsplit(".", 1)[1] for m in _imports(SRC / "record" / f"{name}.py")
                  if m.startswith("clipgap.record")}  # fmt: skip
        assert inside <= set(order[:i]), (name, inside)


def test_study_imports_neither_report_nor_predict():
    for path in sorted((SRC / "study").rglob("*.py")):
        bad = {m for m in _imports(path) if m.startswith(("clipgap.report", "clipgap.predict"))}
        assert not bad, (path.name, bad)


def test_report_and_predict_keep_no_statistics_of_their_own():
    for package in ("report", "predict"):
        for path in sorted((SRC / package).rglob("*.py")):
            text = path.read_text()
            assert "from scipy" not in text and "import scipy" not in text, path
