"""Errors of the machine are not bugs, and outputs appear whole or not at all.

A full disk, a lost permission or a study directory deleted mid-run give one line naming the
path, exit code 4 and no traceback from any thread; the same command then goes on, and the
resumed study equals an uninterrupted one. A failed export, report or checkpoint leaves nothing
behind, and the same command can be repeated.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from clipgap.cli import _thread_hook, main
from clipgap.errors import ENVIRONMENT_EXIT, environment_error
from clipgap.record import read_record
from tests.test_checkpoint import trained

CONFIG = """\
# fault test study: clipgap study --config faults.yaml
model: world-tiny
tasks:
  - {name: "world:shape"}
  - {name: "world:count"}
methods: [linear_probe, bitfit]
train: {epochs: 1, max_steps: 3, batch_size: 32}
eval: {max_test_images: 48}
"""

# Run as ``python -c``: the third record.json written hits a full disk (the write itself fails,
# naming no file, as a full disk's write or flush does).
FULL_DISK_ON_THIRD_RECORD = """\
import builtins, errno, sys
import clipgap.paths as paths
seen = []
def full_open(file, mode="r", *args, **kwargs):
    if ".record.json.tmp" in str(file):
        seen.append(file)
        if len(seen) == 3:
            builtins.open(file, mode, *args, **kwargs).close()  # the temporary file exists
            raise OSError(errno.ENOSPC, "No space left on device")
    return builtins.open(file, mode, *args, **kwargs)
paths.open = full_open
from clipgap.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One clipgap cache for the module: the tiny world CLIP is pretrained once."""
    path = tmp_path_factory.mktemp("faults-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPGAP_CACHE", str(path))
    from clipgap.backbones import load_backbone

    load_backbone("world-tiny")
    mp.undo()
    return path


@pytest.fixture
def study(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPGAP_CACHE", str(cache))
    cfg = tmp_path / "faults.yaml"
    cfg.write_text(CONFIG)
    return cfg


def study_args(cfg: Path, out: Path) -> list[str]:
    return ["--threads", "1", "study", "--config", str(cfg), "--out", str(out), "--no-progress"]


def records(out: Path) -> dict[str, dict]:
    return {d.name: read_record(d).comparable() for d in sorted((out / "runs").iterdir())}


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENOSPC, "no space left on device writing /o/r.json; free space and run the same "
         "command again: finished runs are kept"),
        (errno.EROFS, "read-only file system writing /o/r.json; write to a writable place (or "
         "remount it) and run the same command again: finished runs are kept"),
        (errno.EACCES, "permission denied at /o/r.json; give yourself access (or write "
         "elsewhere) and run the same command again: finished runs are kept"),
        (errno.EIO, "input/output error at /o/r.json; check the disk (dmesg) and run the same "
         "command again: finished runs are kept"),
        (errno.ENOENT, "no such file or directory (moved or deleted while clipgap ran?) at "
         "/o/r.json; restore it (or choose another output) and run the same command again"),
    ],
)  # fmt: skip
def test_errors_of_the_machine_are_one_line_naming_the_path(code, expected):
    exc = OSError(code, os.strerror(code), "/o/r.json")
    assert environment_error(exc, kept="finished runs are kept") == expected


def test_other_errors_are_not_the_machines():
    assert environment_error(OSError(errno.EINVAL, "Invalid argument")) is None
    assert environment_error(ValueError("no")) is None
    assert environment_error(OSError(errno.ENOSPC, "No space left on device")) == (
        "no space left on device; free space and run the same command again"
    )


def test_full_disk_mid_study_is_one_line_then_the_study_resumes(study, cache, tmp_path):
    out = tmp_path / "full"
    env = {**os.environ, "CLIPGAP_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-c", FULL_DISK_ON_THIRD_RECORD, *study_args(study, out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)

    assert proc.returncode == ENVIRONMENT_EXIT == 4, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception in thread" not in proc.stderr
    dirs = sorted((out / "runs").iterdir())
    done = {d.name: (d / "record.json").stat().st_mtime_ns for d in dirs if (d / "DONE").exists()}
    unfinished = [d for d in dirs if not (d / "DONE").exists()]
    assert len(done) == 2 and len(unfinished) == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: no space left on device writing {unfinished[0]}/record.json; free space and "
        f"run the same command again: finished runs are kept"
    ]
    assert not leftovers(out)  # the temporary record file was removed

    assert main(study_args(study, out)) == 0
    for name, mtime in done.items():  # finished before the disk filled: kept, not redone
        assert (out / "runs" / name / "record.json").stat().st_mtime_ns == mtime
    clean = tmp_path / "clean"
    assert main(study_args(study, clean)) == 0
    assert len(records(out)) == 4
    assert records(out) == records(clean)


def test_study_dir_deleted_mid_run_is_one_line_and_never_made_again(
    study, tmp_path, monkeypatch, capsys
):
    import shutil

    from clipgap.study import attempt

    out = tmp_path / "gone"
    real = attempt.execute_run

    def run_then_delete(run, ctx, *, run_dir):
        record = real(run, ctx, run_dir=run_dir)
        shutil.rmtree(out)
        return record

    monkeypatch.setattr(attempt, "execute_run", run_then_delete)
    assert main(study_args(study, out)) == ENVIRONMENT_EXIT
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"error: no such file or directory (moved or deleted while clipgap ran?) at {out}; "
        f"restore it (or choose another output) and run the same command again"
    ]
    assert not out.exists()


def test_heartbeat_stops_quietly_when_the_study_dir_is_deleted(tmp_path):
    import shutil

    from clipgap.study.execution import LockConfig
    from clipgap.study.locks import claim_run

    out = tmp_path / "study"
    out.mkdir()
    died = []
    old, threading.excepthook = threading.excepthook, died.append
    try:
        claim = claim_run(out, "run", settings=LockConfig(heartbeat_s=0.02, stale_after_s=5))
        shutil.rmtree(out)
        deadline = time.monotonic() + 10
        while claim.error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        claim.release()
    finally:
        threading.excepthook = old
    assert died == []  # the thread ended without an exception of its own
    assert isinstance(claim.error, FileNotFoundError) and claim.error.filename == str(out)
    with pytest.raises(FileNotFoundError):
        claim.check()
    assert not out.exists()  # releasing did not make it again
    with pytest.raises(FileNotFoundError):
        claim_run(out, "run", settings=LockConfig())


def test_a_thread_dying_of_a_full_disk_prints_no_traceback(capsys, monkeypatch):
    """As TensorBoard's writer thread does on a full disk (it hands the error to the next
    write); any other error in a thread keeps its traceback."""
    monkeypatch.setattr(threading, "excepthook", _thread_hook)

    def fail(exc):
        def target():
            raise exc

        thread = threading.Thread(target=target, name="writer")
        thread.start()
        thread.join()
        return capsys.readouterr().err

    assert fail(OSError(errno.ENOSPC, "No space left on device")) == ""
    err = fail(ValueError("a bug"))
    assert "Exception in thread writer" in err and "ValueError: a bug" in err


def test_run_log_on_a_full_disk_raises_naming_it_once(tmp_path, capsys, monkeypatch):
    from clipgap.study.runlog import _RunLogHandler, run_log

    def full(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_RunLogHandler, "flush", full, raising=False)  # as a full disk fails
    path = tmp_path / "run.log"
    with pytest.raises(OSError) as info, run_log(path) as logger:
        logger.info("one")
        logger.info("two")  # the block goes on; the file takes no more
        assert any(isinstance(h, _RunLogHandler) for h in logger.handlers)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert "Logging error" not in capsys.readouterr().err


# ----------------------------------------------------------------- whole or not at all


def test_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    from clipgap import paths

    target = tmp_path / "a.json"
    target.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(paths.os, "fsync", full)
    with pytest.raises(OSError) as info:
        paths.atomic_write_text(target, "new")
    assert info.value.filename == str(target)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_failed_checkpoint_save_leaves_nothing_and_can_be_repeated(tiny, tmp_path, monkeypatch):
    from clipgap import paths
    from clipgap.checkpoint import read_checkpoint, save_checkpoint

    model = trained(tiny, "bitfit")
    path = tmp_path / "out" / "checkpoint.safetensors"
    real = paths.os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(paths.os, "fsync", full)
    with pytest.raises(OSError) as info:
        save_checkpoint(model, path)
    assert info.value.filename == str(path)
    assert list(path.parent.iterdir()) == []
    monkeypatch.setattr(paths.os, "fsync", real)
    save_checkpoint(model, path)
    meta, tensors = read_checkpoint(path)
    assert meta["method"] == "bitfit"
    for name, value in model.trainable_parameters().items():
        assert torch.equal(tensors[name], value.detach())
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.safetensors"]


@pytest.fixture
def lora_checkpoint(tiny, tmp_path):
    from clipgap.checkpoint import save_checkpoint

    path = tmp_path / "ckpt" / "checkpoint.safetensors"
    return save_checkpoint(trained(tiny, "lora"), path)


@pytest.mark.parametrize("existing", [False, True], ids=["new", "empty"])
def test_export_failing_midway_leaves_nothing_and_the_same_command_works(
    lora_checkpoint, tmp_path, monkeypatch, capsys, existing
):
    """peft writes DIR/base, then the adapter: the disk fills in between."""
    from clipgap.export import formats

    out = tmp_path / "exported"
    if existing:
        out.mkdir()
    args = ["export", "--checkpoint", str(lora_checkpoint), "--format", "peft", "--out", str(out)]
    real = formats.save_peft_adapter

    def full(model, base_dir, out_dir, **kwargs):
        assert (Path(base_dir) / "config.json").is_file()  # the base is written by now
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(out_dir) / "x"))

    monkeypatch.setattr(formats, "save_peft_adapter", full)
    assert main(args) == ENVIRONMENT_EXIT
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: no space left on device writing {out}/adapter/x; free space and run the same "
        f"command again"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"] + (
        ["exported"] if existing else []
    )
    assert not out.exists() or list(out.iterdir()) == []

    monkeypatch.setattr(formats, "save_peft_adapter", real)
    assert main(args) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["adapter", "base", "export.json"]
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(out / "base")  # not the temporary folder
    assert not leftovers(tmp_path)


def test_report_failing_midway_keeps_the_previous_report(study, tmp_path, monkeypatch, capsys):
    from clipgap.report import formats as render

    out = tmp_path / "study"
    assert main(study_args(study, out)) == 0
    report = out / "report"
    before = {p.relative_to(report): p.read_bytes() for p in report.rglob("*") if p.is_file()}
    assert Path("report.md") in before and Path("report.html") in before

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    real = render.to_html
    monkeypatch.setattr(render, "to_html", full)
    (out / "report" / "report.md").unlink()  # so that a partial rewrite would show
    before.pop(Path("report.md"))
    assert main(["report", str(out)]) == ENVIRONMENT_EXIT
    capsys.readouterr()
    after = {p.relative_to(report): p.read_bytes() for p in report.rglob("*") if p.is_file()}
    assert after == before
    assert not leftovers(out)

    fresh = tmp_path / "fresh"
    assert main(["report", str(out), "--out", str(fresh)]) == ENVIRONMENT_EXIT
    assert not fresh.exists()
    monkeypatch.setattr(render, "to_html", real)
    assert main(["report", str(out)]) == 0
    assert (report / "report.md").is_file() and (report / "report.html").is_file()
    assert not leftovers(out)


def test_report_refuses_a_folder_holding_other_files(study, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(study_args(study, out)) == 0
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert main(["report", str(out), "--out", str(other)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: report directory {other} holds files that are not a report's (notes.txt); "
        f"choose a new or empty folder"
    )
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


# ----------------------------------------------------------------- corrupt records are redone


def test_corrupt_records_are_shown_left_out_then_redone(
    study, tmp_path, capsys, caplog, monkeypatch
):
    from clipgap.study import attempt
    from clipgap.study.locks import read_history

    out = tmp_path / "study"
    assert main(study_args(study, out)) == 0
    original = records(out)
    truncated, missing = sorted(original)[:2]
    record = out / "runs" / truncated / "record.json"
    cut = record.read_text()[:300]
    record.write_text(cut)  # DONE present, the record cut short
    (out / "runs" / missing / "record.json").unlink()  # DONE without a record
    (out / "zero_shot.json").write_text('{"cut')
    capsys.readouterr()

    assert main(["study", "--status", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"study {out}: 4 runs: 2 done, 0 running, 0 failed, 2 corrupt, 0 pending"
    shown = {line.split()[1]: line for line in lines[1:]}
    assert sorted(shown) == sorted([missing, truncated])
    assert shown[missing].startswith(f"corrupt  {missing}  {out}/runs/{missing}/record.json does")
    assert shown[truncated].startswith(f"corrupt  {truncated}  {record}: cannot read JSON (")

    caplog.clear()
    assert main(["report", str(out)]) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and warned[0].startswith("leaving out 2 corrupt run records: ")
    assert missing in warned[0] and truncated in warned[0]
    rows = pd.read_csv(out / "report" / "results.csv", dtype={"run_id": str})
    ids = {name.rsplit("__", 1)[1] for name in original if name not in (missing, truncated)}
    assert sorted(rows["run_id"]) == sorted(ids)  # the two usable runs only

    monkeypatch.setattr(attempt, "_CONTEXTS", {})  # as a new process: zero-shot read from disk
    assert main(study_args(study, out)) == 0
    assert records(out) == original  # redone, and equal to the records they replace
    aside = sorted(p.name for p in (out / "corrupt").iterdir())
    assert aside == sorted([f"{missing}.1", f"{truncated}.1"])
    assert (out / "corrupt" / f"{truncated}.1" / "record.json").read_text() == cut  # kept
    events = [e for e in read_history(out, truncated) if e["event"] == "corrupt"]
    assert len(events) == 1 and events[0]["reason"].startswith(f"{record}: cannot read JSON")
    assert events[0]["moved_to"] == str(out / "corrupt" / f"{truncated}.1")
    assert isinstance(json.loads((out / "zero_shot.json").read_text()), dict)
    capsys.readouterr()
    assert main(["study", "--status", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("4 done, 0 running, 0 failed, "
                                                            "0 corrupt, 0 pending")  # fmt: skip


def test_damaged_study_json_is_written_again_when_every_run_is_this_studys(study, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(study_args(study, out)) == 0
    held = json.loads((out / "study.json").read_text())
    original = records(out)
    (out / "study.json").write_text('{"studies": {"ab')
    assert main(study_args(study, out)) == 0
    assert json.loads((out / "study.json").read_text()) == held
    assert records(out) == original

    (out / "study.json").write_text("[]")
    (out / "runs" / "world-color__full__kall__s0__0123456789abcdef").mkdir()
    capsys.readouterr()
    assert main(study_args(study, out)) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {out}/study.json is damaged (no studies object) and {out}/runs holds runs of "
        f"another study (world-color__full__kall__s0__0123456789abcdef); restore study.json, or "
        f"choose another --out"
    )
