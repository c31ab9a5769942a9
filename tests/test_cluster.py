"""Many workers on one study directory: run locks, stale-lock recovery, shards, --status, the
executor registry and the Ray executor (a stand-in of Ray for the fast tests; a real local Ray
instance in the slow ones)."""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from clipgap.cli import main
from clipgap.errors import ConfigError
from clipgap.record import Difficulty, RunRecord, Scores, read_record, write_record
from clipgap.study import load_study_config, plan_runs
from clipgap.study.execution import LockConfig
from clipgap.study.grid import claim_study_dir, parse_shard, shard_runs
from clipgap.study.locks import (
    HOST,
    PIDNS,
    Owner,
    claim_run,
    owner_path,
    read_history,
    read_owner,
    run_owner,
    write_owner,
)
from clipgap.study.runner import failure_record, identity
from clipgap.study.shared import shared_json_entry

GRID = """\
model: world-tiny
tasks:
  - {name: "world:shape", dg: ["world:shape@sketch"]}
  - {name: "world:count"}
methods: [linear_probe, lora, bitfit]
seeds: [0, 1]
train: {epochs: 1, max_steps: 2, batch_size: 16}
eval: {max_test_images: 32}
resources: {cpus_per_run: 1}
"""
FAST = LockConfig(heartbeat_s=0.05, stale_after_s=0.5)


@pytest.fixture
def grid_cfg(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    return load_study_config(str(path), out=str(tmp_path / "out"))


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ---- shards ------------------------------------------------------------------------------------
def test_shards_partition_the_grid_exactly(grid_cfg):
    runs = plan_runs(grid_cfg)
    names = [r.dirname for r in runs]
    assert len(names) == 2 * 3 * 2 == len(set(names))
    for n in (1, 2, 3, 5, 13):
        shards = [[r.dirname for r in shard_runs(runs, (i, n))] for i in range(n)]
        assert sorted(x for s in shards for x in s) == sorted(names)  # every run, once
        for i, shard in enumerate(shards):
            assert shard == names[i::n]  # every n-th run of the plan from the i-th
    # the same shard whatever is already done: it is taken from the plan, not from what is left
    assert shard_runs(plan_runs(grid_cfg), (1, 3)) == shard_runs(runs, (1, 3))


@pytest.mark.parametrize("text", ["3/2", "2/2", "-1/2", "1/0", "a/b", "1"])
def test_bad_shard_is_one_line(capsys, tmp_path, text):
    err = one_line_error(capsys, ["study", "--out", str(tmp_path / "o"), f"--shard={text}"])
    assert err.startswith(f"error: --shard {text}: expected I/N with 0 <= I < N")
    assert not (tmp_path / "o").exists()
    assert parse_shard(" 1 / 4 ") == (1, 4)


# ---- run locks ---------------------------------------------------------------------------------
def test_a_claim_is_exclusive_and_released_cleanly(tmp_path):
    a = claim_run(tmp_path, "run1", settings=FAST)
    assert a is not None and a.previous is None
    assert run_owner(tmp_path, "run1").pid == os.getpid()
    assert claim_run(tmp_path, "run1", settings=FAST) is None  # held by a live holder
    assert claim_run(tmp_path, "run2", settings=FAST) is not None  # other runs are free
    a.release()
    assert not owner_path(tmp_path, "run1").exists()
    b = claim_run(tmp_path, "run1", settings=FAST)
    assert b is not None and b.previous is None  # a clean release leaves nothing to recover
    b.release()
    events = [e["event"] for e in read_history(tmp_path, "run1")]
    assert events == ["claim", "release", "claim", "release"]


def test_the_heartbeat_keeps_a_claim_fresh_and_notices_a_takeover(tmp_path, caplog):
    claim = claim_run(tmp_path, "run", settings=FAST)
    first = run_owner(tmp_path, "run").heartbeat
    time.sleep(0.3)
    assert run_owner(tmp_path, "run").heartbeat > first  # refreshed every heartbeat_s
    assert run_owner(tmp_path, "run").alive(stale_after=FAST.stale_after_s)
    # another worker broke the lock and wrote its own owner: this claim is lost
    other = Owner("elsewhere", 1, time.time(), time.time(), "their-token")
    write_owner(owner_path(tmp_path, "run"), other)
    time.sleep(0.3)
    assert claim.lost and not claim.still_held()
    assert "lost run run" in caplog.text
    claim.release()
    assert run_owner(tmp_path, "run").token == "their-token"  # their owner file is left alone


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


HOLD_AND_DIE = """\
import os, signal, sys
from clipgap.study.execution import LockConfig
from clipgap.study.locks import claim_run
claim = claim_run(sys.argv[1], "run", settings=LockConfig(heartbeat_s=30, stale_after_s=600))
assert claim is not None
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_lock_of_a_killed_worker_is_recovered_and_logged(tmp_path, caplog):
    """SIGKILL: the OS releases the flock; the owner file it left is recovered and logged."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", HOLD_AND_DIE, str(tmp_path)], env=env)
    assert proc.returncode == -signal.SIGKILL
    left = run_owner(tmp_path, "run")
    assert left is not None and left.host == HOST  # the dead worker's owner file is still there
    assert not left.alive(stale_after=600)  # its pid is gone on this host: stale at once
    with caplog.at_level(logging.WARNING, logger="clipgap.study.locks"):
        claim = claim_run(tmp_path, "run", settings=LockConfig())
    assert claim is not None and claim.previous == left
    assert f"recovered run run: its lock was left by a worker that is gone (host {HOST}" in (
        caplog.text
    )
    claim.release()
    events = [(e["event"], e["pid"]) for e in read_history(tmp_path, "run")]
    assert events[0] == ("claim", left.pid)
    assert [e for e, _ in events[1:]] == ["recovered", "claim", "release"]


CASES = {  # holder: host, pid, heartbeat age (s), pid namespace; whether its lock is broken
    "other host, old heartbeat": ("node-7", 4242, 1000, PIDNS, True),
    "this host, dead pid": (HOST, None, 0, PIDNS, True),
    "other host, fresh heartbeat": ("node-7", 4242, 1, PIDNS, False),
    "this host name, another container's pid": (HOST, None, 1, "pid:[1]", False),
}


@pytest.mark.parametrize("who", list(CASES))
def test_a_lock_that_outlives_its_holder_is_broken_only_when_stale(tmp_path, caplog, who):
    """NFS-like: the lock stays held (here by another handle) though its holder may be gone."""
    from filelock import FileLock

    ghost = FileLock(tmp_path / "locks" / "run.lock")
    (tmp_path / "locks").mkdir()
    ghost.acquire()
    host, pid, age, pidns, broken = CASES[who]
    now = time.time()
    owner = Owner(host, pid or _dead_pid(), now - 2000, now - age, "ghost", pidns)
    write_owner(owner_path(tmp_path, "run"), owner)
    with caplog.at_level(logging.WARNING, logger="clipgap.study.locks"):
        claim = claim_run(tmp_path, "run", settings=LockConfig(heartbeat_s=30, stale_after_s=300))
    try:
        if not broken:
            assert claim is None and "breaking" not in caplog.text  # a live holder is left be
            return
        assert claim is not None and claim.previous.token == owner.token
        assert abs(claim.previous.heartbeat - owner.heartbeat) < 1e-3  # the file's mtime
        assert f"breaking the stale lock of run run: host {host} pid {owner.pid}" in caplog.text
        assert [e["event"] for e in read_history(tmp_path, "run")] == [
            "broke",
            "recovered",
            "claim",
        ]
        assert claim_run(tmp_path, "run", settings=LockConfig()) is None  # and now it is ours
    finally:
        if claim is not None:
            claim.release()
        ghost.release()


def test_threads_racing_for_the_same_runs_execute_each_once(tmp_path):
    names = [f"run{i}" for i in range(12)]
    executed: list[tuple[str, int]] = []

    def worker(k: int) -> None:
        for name in names:
            claim = claim_run(tmp_path, name, settings=FAST)
            if claim is None:
                continue
            with claim:
                if (tmp_path / f"{name}.done").exists():
                    continue
                executed.append((name, k))
                time.sleep(0.01)
                (tmp_path / f"{name}.done").touch()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(Counter(n for n, _ in executed).items()) == sorted((n, 1) for n in names)


def test_a_shared_entry_is_computed_once_and_no_update_is_lost(tmp_path):
    path = tmp_path / "zero_shot.json"
    calls = Counter()

    def compute(key):
        def run():
            calls[key] += 1
            time.sleep(0.05)
            return len(key)

        return run

    def worker(key):
        shared_json_entry(path, key, "fp", compute(key))

    threads = [threading.Thread(target=worker, args=(k,)) for k in ["a", "bb", "a", "bb", "ccc"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == {"a": 1, "bb": 1, "ccc": 1}
    data = json.loads(path.read_text())
    assert {k: v["value"] for k, v in data.items()} == {"a": 1, "bb": 2, "ccc": 3}
    # another base model: computed again
    assert shared_json_entry(path, "a", "fp2", lambda: 7)["value"] == 7


# ---- --status ------------------------------------------------------------------------------------
def _complete(run) -> RunRecord:
    scores = Scores(id=0.5, dg={d: 0.5 for d in run.dg}, control={c: 0.5 for c in run.controls})
    return RunRecord(
        **identity(run),
        status="complete",
        difficulty=Difficulty(n_images=10, n_classes=2, split="train"),
        zero_shot=scores,
        finetuned=scores,
        best_epoch=1,
    )


def test_status_lists_done_running_failed_corrupt_and_pending(grid_cfg, capsys):
    out = Path(grid_cfg.out)
    claim_study_dir(grid_cfg, out, add=False)
    runs = plan_runs(grid_cfg)
    write_record(out / "runs" / runs[0].dirname, _complete(runs[0]))
    write_record(out / "runs" / runs[1].dirname, failure_record(runs[1], ValueError("boom")))
    claim = claim_run(out, runs[2].dirname, settings=LockConfig())  # running, by this process
    dead = Owner(HOST, _dead_pid(), time.time() - 60, time.time() - 50, "t", PIDNS)
    write_owner(owner_path(out, runs[3].dirname), dead)
    write_record(out / "runs" / runs[4].dirname, _complete(runs[4]))
    record = out / "runs" / runs[4].dirname / "record.json"
    record.write_text(record.read_text()[:100])  # truncated, its DONE marker present
    try:
        assert main(["study", "--status", str(out)]) == 0
    finally:
        claim.release()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"study {out}: 12 runs: 1 done, 1 running, 1 failed, 1 corrupt, 8 pending"
    assert lines[1].startswith(f"running  {runs[2].dirname}  host {HOST} pid {os.getpid()} since")
    assert lines[2] == f"failed   {runs[1].dirname}  ValueError: boom"
    assert lines[3].startswith(f"corrupt  {runs[4].dirname}  {record}: cannot read JSON (")
    assert lines[3].endswith(") (the study redoes it)")
    pending = lines[4:]
    assert len(pending) == 8
    assert f"pending  {runs[3].dirname}  (left by a dead worker: host {HOST} pid {dead.pid}" in (
        "\n".join(pending)
    )
    assert {line.split()[1] for line in pending} == {r.dirname for r in [runs[3], *runs[5:]]}


def test_status_of_a_directory_that_is_no_study_is_one_line(capsys, tmp_path):
    err = one_line_error(capsys, ["study", "--status", str(tmp_path)])
    assert err == f"error: {tmp_path} is not a study directory (it has no study.json)"


# ---- executors ---------------------------------------------------------------------------------
def test_executors_register_in_one_registry_and_an_unknown_one_is_one_line(capsys, tmp_path):
    from clipgap.study.executors import EXECUTORS

    assert EXECUTORS.names() == ["local", "ray"]
    cfg = tmp_path / "s.yaml"
    cfg.write_text(GRID + "executor: rey\n")
    err = one_line_error(capsys, ["study", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert err == "error: s.yaml: executor: unknown executor 'rey' (did you mean 'ray'?); " + (
        "choose from: local, ray"
    )


def test_how_runs_execute_is_not_part_of_the_study(grid_cfg):
    from dataclasses import replace

    other = replace(grid_cfg, executor="ray", resources=replace(grid_cfg.resources, cpus_per_run=4))
    assert other.identity() == grid_cfg.identity()
    assert [r.run_id for r in plan_runs(other)] == [r.run_id for r in plan_runs(grid_cfg)]


def test_more_gpus_per_run_than_the_machine_has_is_refused_before_anything_runs(capsys, tmp_path):
    import torch

    cfg = tmp_path / "s.yaml"
    cfg.write_text(GRID)
    want = torch.cuda.device_count() + 1
    out = tmp_path / "o"
    argv = ["study", "--config", str(cfg), "--out", str(out), f"resources.gpus_per_run={want}"]
    err = one_line_error(capsys, argv)
    assert err.startswith(f"error: resources.gpus_per_run={want}, but this process sees ")
    assert not (out / "runs").exists()


def test_ray_not_installed_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    cfg = tmp_path / "s.yaml"
    cfg.write_text(GRID)
    argv = ["study", "--config", str(cfg), "--out", str(tmp_path / "o"), "--executor", "ray"]
    err = one_line_error(capsys, argv)
    assert (
        err == "error: executor ray needs Ray, which is not installed: pip install 'clipgap[ray]'"
    )


def test_an_unreachable_ray_address_is_one_line_within_the_timeout(capsys, tmp_path, monkeypatch):
    import socket

    pytest.importorskip("ray")
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "s.yaml"
    cfg.write_text(GRID)
    argv = ["study", "--config", str(cfg), "--out", str(tmp_path / "o")]
    start = time.monotonic()
    err = one_line_error(capsys, [*argv, "--ray-address", f"127.0.0.1:{port}"])
    assert time.monotonic() - start < 30
    assert err.startswith(f"error: ray.address '127.0.0.1:{port}': cannot reach 127.0.0.1:{port}")
    assert not (tmp_path / "o" / "runs").exists()

    def black_hole(address, timeout):
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", black_hole)
    err = one_line_error(
        capsys, [*argv, "--ray-address", "10.255.255.1:6379", "ray.connect_timeout_s=3"]
    )
    assert err == (
        "error: ray.address '10.255.255.1:6379': cannot reach 10.255.255.1:6379 within 3 s "
        "(timed out); is the Ray head running (`ray start --head`)?"
    )


def test_a_run_larger_than_every_ray_node_is_refused():
    from clipgap.study.executors.ray_cluster import check_fits

    nodes = [
        {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 2.0}},
        {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 1.0}},
        {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}},  # a dead node counts for nothing
    ]
    check_fits(nodes, gpus=2, cpus=16, where="the cluster")
    with pytest.raises(ConfigError) as err:
        check_fits(nodes, gpus=4, cpus=1, where="the Ray cluster at auto")
    assert str(err.value) == (
        "resources.gpus_per_run=4, but the largest node of the Ray cluster at auto has 2 GPU(s) "
        "(3 in all); lower resources.gpus_per_run or add nodes that have them"
    )
    with pytest.raises(ConfigError, match="resources.cpus_per_run=17, but the largest node"):
        check_fits(nodes, gpus=0, cpus=17, where="the cluster")


# ---- grids with a stand-in run (fast) --------------------------------------------------------
@pytest.fixture
def fake_runs(monkeypatch):
    """execute_run replaced by a quick one that returns a complete record; counts its calls."""
    calls = Counter()
    lock = threading.Lock()

    def execute(run, ctx, **kwargs):
        with lock:
            calls[run.dirname] += 1
        time.sleep(0.02)
        return _complete(run)

    monkeypatch.setattr("clipgap.study.attempt.execute_run", execute)
    import torch

    threads = torch.get_num_threads()  # process-wide: workers in threads set it in turn
    yield calls
    torch.set_num_threads(threads)


WORKERS = 3


def test_workers_at_once_run_each_run_once_fast(grid_cfg, fake_runs):
    """Fast variant of the two-process test below: three workers (threads) on one directory."""
    from clipgap.study import run_study

    outcomes = []

    def worker():
        outcomes.append(run_study(grid_cfg, progress=False))

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(r.dirname for r in plan_runs(grid_cfg))
    assert sorted(fake_runs) == names and set(fake_runs.values()) == {1}
    assert sum(o.completed for o in outcomes) == 12
    assert sum(o.skipped + o.completed + o.elsewhere for o in outcomes) == WORKERS * 12
    for name in names:
        assert read_record(Path(grid_cfg.out) / "runs" / name).complete
        events = [e["event"] for e in read_history(grid_cfg.out, name)]
        assert events.count("start") == 1 and events.count("complete") == 1


def test_a_run_left_by_a_killed_worker_is_redone_by_the_next_fast(grid_cfg, fake_runs, caplog):
    """Fast variant of the SIGKILL tests: a run directory half written by a worker that died
    (its owner file left behind, its pid gone) is cleared and redone; finished runs are kept."""
    from clipgap.study import run_study

    out = Path(grid_cfg.out)
    claim_study_dir(grid_cfg, out, add=False)
    runs = plan_runs(grid_cfg)
    write_record(out / "runs" / runs[0].dirname, _complete(runs[0]))
    half = out / "runs" / runs[1].dirname
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    (half / "partial.bin").write_text("x")
    dead = Owner(HOST, _dead_pid(), time.time() - 30, time.time() - 20, "dead", PIDNS)
    write_owner(owner_path(out, runs[1].dirname), dead)
    with caplog.at_level(logging.WARNING, logger="clipgap.study.locks"):
        outcome = run_study(grid_cfg, progress=False)
    assert (outcome.skipped, outcome.completed) == (1, 11)
    assert runs[0].dirname not in fake_runs and fake_runs[runs[1].dirname] == 1
    assert not (half / "partial.bin").exists() and read_record(half).complete
    assert f"recovered run {runs[1].dirname}: its lock was left by a worker that is gone" in (
        caplog.text
    )
    counts = {"done": 12, "running": 0, "failed": 0, "corrupt": 0, "pending": 0}
    assert outcome.status.counts() == counts


# ---- whole studies ----------------------------------------------------------------------------
SMALL = """\
model: world-tiny
tasks:
  - {name: "world:shape", dg: ["world:shape@sketch"]}
  - {name: "world:count"}
methods: [linear_probe, bitfit]
train: {epochs: 1, max_steps: 2, batch_size: 16}
eval: {max_test_images: 32}
resources: {cpus_per_run: 1}
"""


@pytest.fixture(scope="module")
def world_cache(tmp_path_factory):
    """One clipgap cache for the module: the tiny world CLIP is pretrained once."""
    cache = tmp_path_factory.mktemp("world-cache")
    old = os.environ.get("CLIPGAP_CACHE")
    os.environ["CLIPGAP_CACHE"] = str(cache)
    try:
        from clipgap.backbones import load_backbone

        load_backbone("world-tiny")
    finally:
        if old is None:
            os.environ.pop("CLIPGAP_CACHE")
        else:
            os.environ["CLIPGAP_CACHE"] = old
    return cache


@pytest.fixture(scope="module")
def clean_run(world_cache, tmp_path_factory):
    """The small study, uninterrupted, by one local worker: the records others must equal."""
    root = tmp_path_factory.mktemp("clean")
    (root / "small.yaml").write_text(SMALL)
    os.environ["CLIPGAP_CACHE"] = str(world_cache)  # restored by the per-test fixture
    argv = ["study", "--config", str(root / "small.yaml"), "--out", str(root / "out")]
    assert main([*argv, "--no-progress"]) == 0
    return root / "out"


@pytest.fixture
def small(world_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPGAP_CACHE", str(world_cache))
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def assert_same_records(out: Path, clean: Path) -> None:
    names = sorted(p.name for p in (clean / "runs").iterdir())
    assert sorted(p.name for p in (out / "runs").iterdir()) == names
    for name in names:
        a, b = read_record(out / "runs" / name), read_record(clean / "runs" / name)
        assert a is not None and a.complete, name
        assert a.comparable() == b.comparable(), f"{name} differs from the local executor's"


class StandInRay:
    """Ray's API as the executor uses it, run in this process: arguments and results travel
    pickled, as to a worker. ``crash``: runs whose worker dies (RayError from get)."""

    class exceptions:  # noqa: N801  (mirrors ray.exceptions)
        class RayError(Exception):
            pass

        class WorkerCrashedError(RayError):
            pass

    def __init__(self, crash=()):
        self.crash, self.options, self.inits, self.up = set(crash), [], [], False

    def is_initialized(self):
        return self.up

    def init(self, **kwargs):
        self.inits.append(kwargs)
        self.up = True

    def shutdown(self):
        self.up = False

    def nodes(self):
        return [{"Alive": True, "Resources": {"CPU": 2.0}}]

    def remote(self, fn):
        stand_in = self

        class Task:
            def options(self, **kwargs):
                stand_in.options.append(kwargs)
                return self

            def remote(self, *args):
                args = pickle.loads(pickle.dumps(args))
                if args[1].name in stand_in.crash:
                    return Ref("crash", args[1].name)
                return Ref("ok", pickle.loads(pickle.dumps(fn(*args))))

        return Task()

    def wait(self, refs, num_returns=1):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        if ref.kind == "crash":
            raise self.exceptions.WorkerCrashedError("the worker died unexpectedly")
        return ref.value


class Ref:
    def __init__(self, kind, value):
        self.kind, self.value = kind, value


def test_the_ray_executor_on_a_stand_in_gives_the_local_records(
    small, clean_run, tmp_path, monkeypatch, capsys
):
    """Fast variant of the real-Ray test below: the executor's protocol and plain-data tasks."""
    stand_in = StandInRay()
    monkeypatch.setitem(sys.modules, "ray", stand_in)
    out = tmp_path / "ray"
    argv = ["study", "--config", str(small), "--out", str(out), "--executor", "ray"]
    assert main([*argv, "--no-progress", "ray.num_cpus=2", "ray.max_retries=3"]) == 0
    assert "4 runs, 0 already done, 4 run now, 0 failed, 0 by other workers" in (
        capsys.readouterr().out
    )
    assert stand_in.inits == [{"num_cpus": 2, "num_gpus": None, **QUIET}] and not stand_in.up
    opts = {"num_cpus": 1.0, "num_gpus": 0.0, "max_retries": 3, "retry_exceptions": False}
    assert stand_in.options == [opts]
    assert_same_records(out, clean_run)
    assert (out / "report" / "report.html").is_file()


QUIET = {"log_to_driver": False, "include_dashboard": False}


def test_a_run_whose_ray_worker_died_for_good_gets_a_failure_record(
    small, clean_run, tmp_path, monkeypatch, capsys
):
    runs = plan_runs(load_study_config(str(small)))
    stand_in = StandInRay(crash={runs[1].dirname})
    monkeypatch.setitem(sys.modules, "ray", stand_in)
    out = tmp_path / "ray"
    argv = ["study", "--config", str(small), "--out", str(out), "--executor", "ray"]
    assert main([*argv, "--no-progress"]) == 1
    printed = capsys.readouterr().out
    assert f"failed: {runs[1].dirname}: WorkerCrashedError: the worker died unexpectedly" in printed
    assert read_record(out / "runs" / runs[1].dirname).status == "failed"
    # the same command retries it
    monkeypatch.setitem(sys.modules, "ray", StandInRay())
    assert main([*argv, "--no-progress"]) == 0
    assert_same_records(out, clean_run)


def test_a_full_disk_on_a_ray_worker_stops_the_study_in_one_line(
    small, clean_run, tmp_path, monkeypatch, capsys
):
    """A Ray task that fails on an error of the machine writes no failure record: the study
    stops as a local one does (exit 4, one line) and the same command redoes the run."""
    runs = plan_runs(load_study_config(str(small)))
    out = tmp_path / "ray"
    full = OSError(errno.ENOSPC, "No space left on device", str(out / "runs" / runs[1].dirname))

    class FullDiskRay(StandInRay):
        def get(self, ref):
            if ref.kind == "crash":
                error = self.exceptions.RayError("task failed")
                error.cause = full  # as ray.exceptions.RayTaskError carries it
                raise error
            return ref.value

    monkeypatch.setitem(sys.modules, "ray", FullDiskRay(crash={runs[1].dirname}))
    argv = ["study", "--config", str(small), "--out", str(out), "--executor", "ray"]
    assert main([*argv, "--no-progress"]) == 4
    assert capsys.readouterr().err.strip() == (
        f"error: no space left on device writing {out}/runs/{runs[1].dirname}; free space and "
        f"run the same command again: finished runs are kept"
    )
    assert read_record(out / "runs" / runs[1].dirname) is None  # no failure record
    monkeypatch.setitem(sys.modules, "ray", StandInRay())
    assert main([*argv, "--no-progress"]) == 0
    assert_same_records(out, clean_run)


def _start(cfg: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "clipgap", "study", "--config", str(cfg), "--out", str(out),
           "--no-progress", *extra]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def starts(out: Path, name: str) -> list[int]:
    """Pids that started run ``name``, from its lock history; cross-checked with its run.log."""
    pids = [e["pid"] for e in read_history(out, name) if e["event"] == "start"]
    log_starts = (out / "runs" / name / "run.log").read_text().count(f"run {name} started:")
    assert log_starts == 1
    return pids


@pytest.mark.slow
def test_two_workers_started_at_once_share_the_grid_and_run_each_run_once(
    small, clean_run, tmp_path
):
    out = tmp_path / "shared"
    procs = [_start(small, out), _start(small, out)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, stderr) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, stderr
    assert_same_records(out, clean_run)
    ran = 0
    for name in sorted(p.name for p in (out / "runs").iterdir()):
        pids = starts(out, name)
        assert len(pids) == 1 and pids[0] in {p.pid for p in procs}, (name, pids)
        ran += 1
    assert ran == 4
    run_now = [int(o.split(" run now")[0].rsplit(" ", 1)[1]) for o, _ in outputs]
    assert sum(run_now) == 4, outputs  # together they ran the grid once
    assert (out / "report" / "report.html").is_file()


def test_shards_run_their_share_and_the_last_builds_the_report(small, clean_run, tmp_path, capsys):
    out = tmp_path / "sharded"
    argv = ["study", "--config", str(small), "--out", str(out), "--no-progress"]
    runs = plan_runs(load_study_config(str(small)))
    assert main([*argv, "--shard", "1/2"]) == 0
    printed = capsys.readouterr().out
    assert "(shard 1/2): 2 runs, 0 already done, 2 run now" in printed
    assert "report: not built yet (0 runs running on other workers, 2 pending)" in printed
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(r.dirname for r in runs[1::2])
    assert not (out / "report").exists()
    assert main([*argv, "--shard", "0/2"]) == 0
    assert "report: " + str(out / "report" / "report.html") in capsys.readouterr().out
    assert_same_records(out, clean_run)


@pytest.mark.slow
def test_a_study_on_a_local_ray_instance_gives_the_local_records(small, clean_run, tmp_path):
    """A real local Ray instance (2 CPUs); the Ray worker of the first run is SIGKILLed mid-run:
    Ray retries the task, the retry recovers the dead worker's lock, and the records equal the
    local executor's."""
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    proc = _start(small, out, "--executor", "ray", "ray.num_cpus=2")
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        for path in sorted((out / "locks").glob("*.owner")) if (out / "locks").is_dir() else []:
            owner = read_owner(path)
            if owner is not None and owner.pid != proc.pid:  # a Ray worker holds a run
                os.kill(owner.pid, signal.SIGKILL)
                killed = (path.name[: -len(".owner")], owner.pid)
                break
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert killed is not None, "no Ray worker was seen holding a run"
    assert "4 runs, 0 already done, 4 run now, 0 failed, 0 by other workers" in stdout
    assert_same_records(out, clean_run)
    name, pid = killed
    events = [(e["event"], e["pid"]) for e in read_history(out, name)]
    assert events[0] == ("claim", pid) and ("recovered", pid) not in events
    assert [e for e, _ in events].count("recovered") == 1  # the retry took the dead worker's lock
    assert [e for e, _ in events].count("complete") == 1
    for other in (p.name for p in (out / "runs").iterdir() if p.name != name):
        assert len(starts(out, other)) == 1

    # bad input: more GPUs per run than the instance has, said before anything starts
    out2 = tmp_path / "gpus"
    proc = _start(small, out2, "--executor", "ray", "ray.num_cpus=2", "resources.gpus_per_run=1")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert stderr.strip().splitlines()[-1] == (
        "error: resources.gpus_per_run=1, but the largest node of the local Ray instance has "
        "0 GPU(s) (0 in all); lower resources.gpus_per_run or add nodes that have them"
    )
    assert not (out2 / "runs").exists()


def test_ray_address_auto_without_a_cluster_is_one_line(capsys, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from ray._private import services

    def nothing_running(address, temp_dir=None):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(services, "canonicalize_bootstrap_address", nothing_running)
    cfg = tmp_path / "s.yaml"
    cfg.write_text(GRID)
    argv = ["study", "--config", str(cfg), "--out", str(tmp_path / "o"), "--ray-address", "auto"]
    err = one_line_error(capsys, argv)
    assert err == (
        "error: ray.address 'auto': no running Ray cluster found on this machine; start one "
        "with `ray start --head`, or give its HOST:PORT"
    )
    assert not (tmp_path / "o").exists()
