"""End to end: `clipgap study` on a small world config, as a user runs it."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from clipgap.cli import main
from clipgap.data import load_task
from clipgap.record import SCHEMA_VERSION, read_record

METHODS = ["full", "aclip", "bitfit", "lora", "clip_adapter", "linear_probe"]
RECORD_KEYS = {
    "schema", "run_id", "status", "error", "task", "method", "seed", "preset", "model", "config",
    "shots", "difficulty", "zero_shot", "finetuned", "delta_id", "delta_dg", "delta_dg_per_domain",
    "cf", "cf_mean", "trainable_params", "best_epoch", "val_accuracy", "val_accuracy_start",
    "history", "interpolation", "seconds", "eval_seconds", "peak_memory_mb", "versions", "device",
}  # fmt: skip


def training_portion_size(spec: str) -> int:
    """Images of a task's train split minus the trainer's 10 % validation hold-out."""
    n = len(load_task(spec, "train"))
    return n - round(0.1 * n)


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
    """The records as JSON, each also read (and validated) as a typed record."""
    for p in sorted(out.glob("runs/*/record.json")):
        assert read_record(p.parent) is not None
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


PANELS = {
    "world:shape": ["world:color", "world:texture", "world:position"],
    "world:light": ["world:color", "world:texture", "world:shape"],
}


def test_records_hold_consistent_numbers(finished_study):
    _, out, _ = finished_study
    records = load_records(out)
    by_key = {(r["task"], r["method"]): r for r in records}
    for r in records:
        assert set(r) >= RECORD_KEYS, RECORD_KEYS - set(r)
        assert r["status"] == "complete"
        assert r["delta_id"] == pytest.approx(r["finetuned"]["id"] - r["zero_shot"]["id"])
        # forgetting is measured on the task's control panel: no shared label attribute
        assert sorted(r["cf"]) == sorted(PANELS[r["task"]])
        for other in PANELS[r["task"]]:
            assert r["cf"][other] == pytest.approx(
                r["finetuned"]["control"][other] - r["zero_shot"]["control"][other]
            )
        assert 0 <= r["finetuned"]["id"] <= 1 and r["trainable_params"] > 0
        assert r["schema"] == SCHEMA_VERSION and r["shots"] is None
        assert r["difficulty"]["split"] == "train"
        assert r["difficulty"]["n_images"] == training_portion_size(r["task"])
        assert r["val_accuracy_start"] == r["history"][0]["val_accuracy"]
        assert [h["epoch"] for h in r["history"]] == [0, 1]
        n_test = 48  # eval.max_test_images: zero-shot baselines are on the (capped) test split
        assert r["zero_shot"]["id"] * n_test == pytest.approx(round(r["zero_shot"]["id"] * n_test))
    shape = by_key[("world:shape", "lora")]
    assert list(shape["delta_dg_per_domain"]) == ["world:shape@sketch"]
    assert by_key[("world:light", "lora")]["delta_dg"] is None
    # the zero-shot side is computed once per study: identical across methods
    for key in ("zero_shot", "difficulty"):
        seen = {json.dumps(r[key], sort_keys=True) for r in records if r["task"] == "world:shape"}
        assert len(seen) == 1, key
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


def test_old_schema_dir_is_refused_and_left_untouched(
    finished_study, world_cache, capsys, tmp_path
):
    _, out, tmp = finished_study
    old = tmp_path / "old"
    shutil.copytree(out, old)
    path = sorted(old.glob("runs/*/record.json"))[0]
    path.write_text(path.read_text().replace(f'"schema": {SCHEMA_VERSION}', '"schema": 1'))
    before = {p: p.read_bytes() for p in old.rglob("*") if p.is_file()}
    argv = ["study", "--config", small_config(tmp), "--out", str(old), "--no-progress"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "record schema 1" in err[0] and "new --out" in err[0], err
    assert {p: p.read_bytes() for p in old.rglob("*") if p.is_file()} == before
    assert main([*argv, "--add"]) == 2  # --add never mixes schemas either


SHOTS_STUDY = """\
# shots study: clipgap study --config shots.yaml
model: world-tiny
tasks:
  - {name: "world:shape", dg: ["world:shape@sketch"]}
  - {name: "world:light"}
methods: [linear_probe, clip_adapter]
shots: [4, all]
train: {epochs: 1, max_steps: 3, batch_size: 32}
eval: {max_test_images: 48}
"""


def test_shots_study_trains_on_k_images_per_class(world_cache, tmp_path, capsys):
    cfg = tmp_path / "shots.yaml"
    cfg.write_text(SHOTS_STUDY)
    out = tmp_path / "out"
    argv = ["study", "--config", str(cfg), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "shots" in stdout.splitlines()[1]  # the summary has a shots column
    by_dir = {d.name: read_record(d) for d in sorted((out / "runs").iterdir())}
    records = list(by_dir.values())
    assert len(records) == 2 * 2 * 2 and all(r.complete for r in records)
    assert {(r.task, r.method, r.shots) for r in records} == {
        (t, m, k)
        for t in ("world:shape", "world:light")
        for m in ("linear_probe", "clip_adapter")
        for k in (4, None)
    }
    for name, r in by_dir.items():
        assert f"__k{'all' if r.shots is None else r.shots}__s0__" in name
        assert r.config["shots"] == r.shots == r.config["train"]["shots"]
        n_classes = len(load_task(r.task, "test").class_names)
        # 4 images x C classes fit in one batch of 32; the full split is cut at max_steps=3
        steps = 3 if r.shots is None else -(-4 * n_classes // 32)
        first = next(h for h in r.history if h["epoch"] == 1)
        assert first["steps"] == steps, name
        # baselines and difficulty belong to the task, not to the run's shots
        same_task = [o for o in records if o.task == r.task]
        assert all(o.zero_shot == r.zero_shot and o.difficulty == r.difficulty for o in same_task)
        assert r.difficulty.split == "train"
        assert r.difficulty.n_images == training_portion_size(r.task)
    keys = json.loads((out / "zero_shot.json").read_text())
    assert sum(k.startswith("difficulty|") for k in keys) == 2  # once per task
    assert all("split=train" in k for k in keys if k.startswith("difficulty|"))
    assert main(argv) == 0
    assert "8 already done, 0 run now" in capsys.readouterr().out


def test_shots_larger_than_a_class_refused_before_any_run(world_cache, tmp_path, capsys):
    cfg = tmp_path / "shots.yaml"
    cfg.write_text(SHOTS_STUDY.replace("shots: [4, all]", "shots: [4, 5000]"))
    out = tmp_path / "out"
    assert main(["study", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "train.shots=5000 is more than class" in err[0]
        and "of task world:shape" in err[0]
    )
    assert not out.exists()
