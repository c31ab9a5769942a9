"""End to end: `clipgap study` on a small world config, as a user runs it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from clipgap.cli import main

METHODS = ["full", "aclip", "bitfit", "lora", "clip_adapter", "linear_probe"]
RECORD_KEYS = {
    "schema", "run_id", "status", "error", "task", "method", "seed", "preset", "model", "config",
    "difficulty", "zero_shot", "finetuned", "delta_id", "delta_dg", "delta_dg_per_domain", "cf",
    "cf_mean", "trainable_params", "best_epoch", "val_accuracy", "seconds", "eval_seconds",
    "peak_memory_mb", "versions", "device",
}  # fmt: skip


def small_config(
    tmp_path: Path, *, dg: str = "world:shape@sketch", name: str = "study.yaml"
) -> str:
    text = f"""\
# test study: clipgap study --config {name}
model: world-tiny
tasks:
  - {{name: "world:shape", dg: ["{dg}"]}}
  - {{name: "world:light"}}
methods: {json.dumps(METHODS)}
train: {{epochs: 1, max_steps: 3, batch_size: 32}}
eval: {{max_test_images: 48}}
"""
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("study-cache")


@pytest.fixture
def world_cache(shared_cache, monkeypatch):
    """One clipgap cache for the module: the tiny world CLIP is pretrained once."""
    monkeypatch.setenv("CLIPGAP_CACHE", str(shared_cache))


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory, shared_cache):
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPGAP_CACHE", str(shared_cache))
    tmp = tmp_path_factory.mktemp("study")
    out = tmp / "out"
    rc = main(["study", "--config", small_config(tmp), "--out", str(out), "--no-progress"])
    mp.undo()
    return rc, out, tmp


def load_records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("runs/*/record.json"))]


def test_study_writes_runs_records_and_report(finished_study):
    rc, out, _ = finished_study
    assert rc == 0
    run_dirs = sorted((out / "runs").iterdir())
    assert len(run_dirs) == 2 * len(METHODS)
    for d in run_dirs:
        assert {"config.json", "record.json", "DONE", "run.log"} <= {p.name for p in d.iterdir()}
    for name in ("report.md", "report.html", "results.csv"):
        assert (out / "report" / name).stat().st_size > 0
    assert (out / "study.json").is_file() and (out / "zero_shot.json").is_file()
    with open(out / "report" / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * len(METHODS)


def test_records_hold_consistent_numbers(finished_study):
    _, out, _ = finished_study
    records = load_records(out)
    by_key = {(r["task"], r["method"]): r for r in records}
    for r in records:
        assert set(r) >= RECORD_KEYS, RECORD_KEYS - set(r)
        assert r["status"] == "complete"
        assert r["delta_id"] == pytest.approx(r["finetuned"]["id"] - r["zero_shot"]["id"])
        other = "world:light" if r["task"] == "world:shape" else "world:shape"
        assert list(r["cf"]) == [other]
        assert r["cf"][other] == pytest.approx(
            r["finetuned"]["control"][other] - r["zero_shot"]["control"][other]
        )
        assert 0 <= r["finetuned"]["id"] <= 1 and r["trainable_params"] > 0
    shape = by_key[("world:shape", "lora")]
    assert list(shape["delta_dg_per_domain"]) == ["world:shape@sketch"]
    assert by_key[("world:light", "lora")]["delta_dg"] is None
    # the zero-shot side is computed once per study: identical across methods
    zs = {json.dumps(r["zero_shot"], sort_keys=True) for r in records if r["task"] == "world:shape"}
    assert len(zs) == 1
    # a linear probe leaves the backbone untouched: no forgetting, exactly
    assert by_key[("world:shape", "linear_probe")]["cf_mean"] == 0.0
    params = {m: by_key[("world:shape", m)]["trainable_params"] for m in METHODS}
    assert params["full"] > params["aclip"] > params["bitfit"]


def test_rerun_skips_finished_runs(finished_study, world_cache, capsys):
    _, out, tmp = finished_study
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/record.json")}
    rc = main(["study", "--config", small_config(tmp), "--out", str(out), "--no-progress"])
    assert rc == 0
    assert "12 already done, 0 run now" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/record.json")} == before


def test_report_rebuilds_from_records(finished_study, world_cache, capsys):
    _, out, _ = finished_study
    md = (out / "report" / "report.md").read_text()
    (out / "report" / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report" / "report.md").read_text() == md


def test_different_study_in_same_dir_is_refused(finished_study, world_cache, capsys, tmp_path):
    _, out, _ = finished_study
    other = small_config(tmp_path, dg="world:shape@mosaic", name="other.yaml")
    assert main(["study", "--config", other, "--out", str(out), "--no-progress", "--dry-run"]) == 0
    assert (
        main(
            [
                "study",
                "--config",
                other,
                "--out",
                str(out),
                "--no-progress",
                "methods=[lora]",
                "tasks=[{name: 'world:shape'}]",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "holds runs of a different study" in err and "--add" in err


def test_failed_run_leaves_failure_record_and_grid_goes_on(world_cache, tmp_path, capsys):
    cfg = small_config(tmp_path, dg="world:shape@nostyle")
    out = tmp_path / "out"
    rc = main(
        [
            "study",
            "--config",
            cfg,
            "--out",
            str(out),
            "--no-progress",
            "methods=[lora, linear_probe]",
        ]
    )
    assert rc == 1
    records = load_records(out)
    failed = [r for r in records if r["status"] == "failed"]
    done = [r for r in records if r["status"] == "complete"]
    assert {r["task"] for r in failed} == {"world:shape"} and len(failed) == 2
    assert "nostyle" in failed[0]["error"]
    assert {r["task"] for r in done} == {"world:light"}
    assert "failed" in (out / "report" / "report.md").read_text().lower()
    assert "failed: " in capsys.readouterr().out
