"""Crash safety and determinism: kill a study mid-run, resume it, compare with a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clipgap.cli import main
from clipgap.record import read_record

CONFIG = """\
# crash test study: clipgap study --config crash.yaml
model: world-tiny
tasks:
  - {name: "world:shape", dg: ["world:shape@sketch"]}
  - {name: "world:count"}
methods: [linear_probe, lora, bitfit, clip_adapter]
train: {epochs: 2, max_steps: 6, batch_size: 32}
eval: {max_test_images: 48}
"""


@pytest.fixture
def study(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CLIPGAP_CACHE", str(cache))
    from clipgap.backbones import load_backbone

    load_backbone("world-tiny")  # pretrain once, outside the timed subprocess
    cfg = tmp_path / "crash.yaml"
    cfg.write_text(CONFIG)
    return cfg, cache


def _kill_mid_run(cfg: Path, out: Path, cache: Path) -> None:
    """Start the study in a subprocess; SIGKILL it once a run is finished and the next begun."""
    env = {**os.environ, "CLIPGAP_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "clipgap", "study", "--config", str(cfg), "--out", str(out),
           "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            dirs = list((out / "runs").glob("*")) if (out / "runs").is_dir() else []
            done = [d for d in dirs if (d / "DONE").exists()]
            started = [
                d for d in dirs if (d / "config.json").exists() and not (d / "DONE").exists()
            ]
            if done and started:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return
            if proc.poll() is not None:
                pytest.fail("the study finished before it could be killed mid-run")
            time.sleep(0.02)
        pytest.fail("no run finished within the deadline")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_killed_study_resumes_to_the_records_of_an_uninterrupted_run(study, tmp_path):
    cfg, cache = study
    out = tmp_path / "killed"
    _kill_mid_run(cfg, out, cache)

    dirs = sorted((out / "runs").iterdir())
    finished = {
        d.name: (d / "record.json").stat().st_mtime_ns for d in dirs if (d / "DONE").exists()
    }
    unfinished = [d for d in dirs if not (d / "DONE").exists()]
    assert finished and unfinished, "the kill must leave finished runs and one mid-way"
    for d in unfinished:
        assert read_record(d) is None  # a run without its DONE marker is never read as a record

    assert main(["study", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    resumed = {d.name: d for d in sorted((out / "runs").iterdir())}
    assert len(resumed) == 2 * 4
    for name, d in resumed.items():
        assert (d / "DONE").read_text().strip() == "complete"
        assert not list(d.glob(".*tmp*")), f"leftover temporary file in {name}"
        if name in finished:  # finished before the kill: kept, not redone
            assert (d / "record.json").stat().st_mtime_ns == finished[name]

    clean = tmp_path / "clean"
    assert main(["study", "--config", str(cfg), "--out", str(clean), "--no-progress"]) == 0
    for name, d in resumed.items():
        a, b = read_record(d), read_record(clean / "runs" / name)
        assert a.comparable() == b.comparable(), f"{name} differs from the uninterrupted run"


def _worker(cfg: Path, out: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "CLIPGAP_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "clipgap", "study", "--config", str(cfg), "--out", str(out),
           "--no-progress"]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # fast variant: test_cluster.py::test_a_run_left_by_a_killed_worker_is_redone_by_the_next_fast
def test_a_worker_killed_mid_run_leaves_its_run_to_the_other(study, tmp_path):
    """Two workers on one directory; one is SIGKILLed while it holds a run. The other (or, if it
    had ended, a re-run) redoes that run; the records equal an uninterrupted run's."""
    from clipgap.study.locks import read_history, read_owner

    cfg, cache = study
    out = tmp_path / "shared"
    victim, other = _worker(cfg, out, cache), _worker(cfg, out, cache)
    killed = None
    deadline = time.monotonic() + 240
    try:
        while killed is None and time.monotonic() < deadline and victim.poll() is None:
            owners = sorted((out / "locks").glob("*.owner")) if (out / "locks").is_dir() else []
            for path in owners:
                owner = read_owner(path)
                if owner is not None and owner.pid == victim.pid:
                    victim.send_signal(signal.SIGKILL)
                    victim.wait(timeout=30)
                    killed = path.name[: -len(".owner")]
                    break
            time.sleep(0.02)
        assert killed is not None, "the worker was never seen holding a run"
        assert other.wait(timeout=600) == 0, other.stderr.read()
    finally:
        for proc in (victim, other):
            if proc.poll() is None:
                proc.kill()
    assert main(["study", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0

    events = [(e["event"], e["pid"]) for e in read_history(out, killed)]
    assert events[:2] == [("claim", victim.pid), ("start", victim.pid)]
    assert [e for e, _ in events].count("recovered") == 1
    assert [e for e, _ in events].count("complete") == 1
    assert [e for e, _ in events].count("start") == 2  # the killed try, and the redo
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 2 * 4
    for d in runs:
        starts = [e for e in read_history(out, d.name) if e["event"] == "start"]
        assert len(starts) == (2 if d.name == killed else 1), d.name
        assert (d / "DONE").read_text().strip() == "complete"

    clean = tmp_path / "clean"
    assert main(["study", "--config", str(cfg), "--out", str(clean), "--no-progress"]) == 0
    for d in runs:
        a, b = read_record(d), read_record(clean / "runs" / d.name)
        assert a.comparable() == b.comparable(), f"{d.name} differs from the uninterrupted run"
