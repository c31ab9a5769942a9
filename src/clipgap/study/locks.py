"""Claiming the runs of a shared study directory, and writing its study-wide files safely.

Several ``clipgap study`` processes (one per GPU, a SLURM array, Ray tasks) may share one
output directory. A worker claims a run with a lock of its own before it touches the run::

    OUT/locks/<run>.lock      the lock (``filelock``: flock on POSIX), held while the run executes
    OUT/locks/<run>.owner     its holder: host, pid, start time, last heartbeat (JSON)
    OUT/locks/<run>.history   one JSON line per claim, recovery, run start, record and release

Only the holder clears, runs and records the run. The operating system releases a flock when
its process dies (SIGKILL, out of memory), so on a local file system the next worker takes the
run at once; the owner file the dead worker left says who it was, and the recovery is logged.
Where a lock can outlive its holder (NFS-like file systems, a lost node), a held lock is stale
when its owner's pid is gone on this host, or its heartbeat (refreshed every ``heartbeat_s``)
is older than ``stale_after_s``: a worker then breaks it, under a study-wide recovery lock so
only one does, logs it and takes the run. A holder that finds its owner file replaced has lost
the run and writes nothing. The heartbeat is the owner file's modification time, which the
holder touches (and never rewrites).

Study-wide files (``study.json``, ``zero_shot.json``) are written under the same discipline:
see :mod:`clipgap.study.shared`.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from clipgap.paths import atomic_write_text, name_path
from clipgap.study.execution import LockConfig

log = logging.getLogger(__name__)

LOCK_DIR = "locks"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


# Where a pid means something: containers may share a host name but not their pids.
HOST, PIDNS = socket.gethostname(), _pid_namespace()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


@dataclass(frozen=True)
class Owner:
    """Who holds a run: ``host``, ``pid`` (in pid namespace ``pidns``), when the claim
    ``started``, its last ``heartbeat`` (seconds since the epoch: the owner file's modification
    time, which the holder touches) and the claim's ``token``."""

    host: str
    pid: int
    started: float
    heartbeat: float
    token: str
    pidns: str = ""

    def alive(self, *, stale_after: float, now: float | None = None) -> bool:
        """False when the process is gone on this host (in this pid namespace) or the
        heartbeat is older than ``stale_after`` seconds."""
        if self.host == HOST and self.pidns == PIDNS and not pid_alive(self.pid):
            return False
        return (time.time() if now is None else now) - self.heartbeat <= stale_after

    def who(self) -> str:
        return f"host {self.host} pid {self.pid}"

    def describe(self, now: float | None = None) -> str:
        age = (time.time() if now is None else now) - self.heartbeat
        return f"{self.who()} since {_stamp(self.started)} (heartbeat {age:.0f} s ago)"


def _vanished(out: Path) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(out))


def lock_dir(out: str | Path) -> Path:
    return Path(out) / LOCK_DIR


def owner_path(out: str | Path, name: str) -> Path:
    return lock_dir(out) / f"{name}.owner"


def history_path(out: str | Path, name: str) -> Path:
    return lock_dir(out) / f"{name}.history"


def read_owner(path: Path) -> Owner | None:
    """The owner file at ``path`` (its heartbeat is the file's modification time), or None when
    there is none (or it cannot be read)."""
    try:
        data = json.loads(path.read_text())
        return Owner(**{**data, "heartbeat": path.stat().st_mtime})
    except (OSError, ValueError, TypeError):
        return None


def write_owner(path: Path, owner: Owner) -> None:
    """Write the owner file atomically, its modification time set to ``owner.heartbeat``."""
    data = {k: v for k, v in asdict(owner).items() if k != "heartbeat"}
    atomic_write_text(path, json.dumps(data))
    os.utime(path, (owner.heartbeat, owner.heartbeat))


def run_owner(out: str | Path, name: str) -> Owner | None:
    return read_owner(owner_path(out, name))


def append_history(out: str | Path, name: str, event: str, **extra) -> None:
    """One JSON line (event, host, pid, time) in the run's append-only history."""
    line = {"event": event, "host": HOST, "pid": os.getpid(), "time": time.time(), **extra}
    path = history_path(out, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
    except OSError as exc:  # a full disk fails the write without naming the file
        raise name_path(exc, path) from None


def read_history(out: str | Path, name: str) -> list[dict]:
    path = history_path(out, name)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class RunClaim:
    """A held run: its lock, its owner file (kept fresh by a heartbeat thread) and the owner a
    dead worker left behind (``previous``), if any. Use as a context manager, or ``release()``."""

    def __init__(self, out: Path, name: str, lock: FileLock, settings: LockConfig) -> None:
        self.out, self.name, self._lock, self.settings = Path(out), name, lock, settings
        self.previous = run_owner(out, name)
        now = time.time()
        self.owner = Owner(HOST, os.getpid(), now, now, uuid.uuid4().hex, PIDNS)
        write_owner(owner_path(out, name), self.owner)
        self.lost = False
        self.error: OSError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {name}", daemon=True)
        if self.previous is not None:
            log.warning(
                "recovered run %s: its lock was left by a worker that is gone (%s); redoing it",
                name,
                self.previous.describe(),
            )
            append_history(out, name, "recovered", previous=asdict(self.previous))
        append_history(out, name, "claim")
        self._thread.start()  # last: a claim that fails to start leaves no thread behind

    def still_held(self) -> bool:
        """Whether the owner file is still this claim's (False once another worker broke it)."""
        current = run_owner(self.out, self.name)
        return current is not None and current.token == self.owner.token

    def _beat(self) -> None:
        """Touch the owner file every ``heartbeat_s`` (never rewriting it: a worker that broke
        the lock meanwhile keeps its own owner file) until released or taken over. An error of
        the machine (the study directory deleted, a full or failing disk) stops the thread
        quietly: it is kept in ``error`` for the holder to raise (:meth:`check`)."""
        path = owner_path(self.out, self.name)
        while not self._stop.wait(self.settings.heartbeat_s):
            try:
                if not lock_dir(self.out).is_dir():
                    raise _vanished(self.out)
                if not self.still_held():
                    self.lost = True
                    log.error("lost run %s: another worker took its lock over", self.name)
                    return
                os.utime(path)
            except FileNotFoundError as exc:
                if exc.filename == str(path):
                    continue  # the next beat finds out whose it is
                self.error = exc
                return
            except OSError as exc:
                self.error = exc
                return

    def check(self) -> None:
        """Raise the error of the machine that stopped the heartbeat, if one did."""
        if self.error is not None:
            raise self.error

    def release(self, event: str = "release") -> None:
        """Stop the heartbeat, remove the owner file (if still ours), release the lock."""
        self._stop.set()
        self._thread.join()
        try:
            if self.error is None and self.still_held():
                owner_path(self.out, self.name).unlink(missing_ok=True)
                append_history(self.out, self.name, event)
        finally:
            self._lock.release()

    def __enter__(self) -> RunClaim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim_run(out: str | Path, name: str, *, settings: LockConfig) -> RunClaim | None:
    """Claim run ``name`` of study ``out``; None when a live worker holds it.

    A lock whose holder is dead (pid gone on this host, or heartbeat older than
    ``settings.stale_after_s``) is broken and taken, with a warning naming the holder.
    """
    out = Path(out)
    if not out.is_dir():  # deleted under a running study: never made again here
        raise _vanished(out)
    lock_dir(out).mkdir(exist_ok=True)
    path = lock_dir(out) / f"{name}.lock"
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return _break_stale(out, name, path, settings)
    try:
        return RunClaim(out, name, lock, settings)
    except BaseException:
        lock.release()
        raise


def _break_stale(out: Path, name: str, path: Path, settings: LockConfig) -> RunClaim | None:
    owner = run_owner(out, name)
    if owner is None or owner.alive(stale_after=settings.stale_after_s):
        return None  # a live holder (or one that has just taken the lock)
    recovery = FileLock(lock_dir(out) / ".recovery.lock")
    try:
        recovery.acquire(timeout=settings.stale_after_s)
    except Timeout:
        return None
    try:
        current = run_owner(out, name)
        if current is None or current.token != owner.token:
            return None  # released, or broken by another worker, meanwhile
        log.warning("breaking the stale lock of run %s: %s does not answer", name, owner.describe())
        append_history(out, name, "broke", previous=asdict(owner))
        path.unlink(missing_ok=True)  # the dead holder keeps the old inode; the lock is new
        lock = FileLock(path)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        try:
            return RunClaim(out, name, lock, settings)  # writes our owner inside the recovery lock
        except BaseException:
            lock.release()
            raise
    finally:
        recovery.release()
