"""One worker's attempt at one run of a shared study directory; every executor calls it.

:meth:`StudyJob.attempt` claims the run's lock (:mod:`clipgap.study.locks`), and only then
clears what an earlier try left, runs :func:`clipgap.study.runner.execute_run`, and writes the
record (``record.json``, then ``DONE``, each atomically). A run another worker holds, or one
that another worker finished since this invocation looked, is left alone. An error of the
machine (a full disk, the study directory deleted: an :class:`OSError`) is not a run's failure:
it stops the attempt without a record, naming the path, and the same command redoes the run.
The job is plain data, so a Ray task receives it and runs the same code in its own process.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from clipgap.devices import torch_threads
from clipgap.errors import ClipgapError
from clipgap.paths import atomic_write_text, name_path
from clipgap.record import DONE_MARKER, RunRecord, read_record, write_record
from clipgap.study.config import StudyConfig
from clipgap.study.context import RunContext
from clipgap.study.locks import HOST, append_history, claim_run
from clipgap.study.runlog import run_log
from clipgap.study.runner import execute_run, failure_record
from clipgap.study.spec import RunSpec
from clipgap.study.status import read_run

log = logging.getLogger(__name__)

# Errors of a run that become its failure record (the grid goes on); anything else is a bug.
RUN_ERRORS = (ClipgapError, RuntimeError, ValueError, FloatingPointError)

# Where run directories whose record is corrupt are moved (outside ``runs/``, never read as runs).
CORRUPT_DIR = "corrupt"

# Attempt states: this worker ran it; another worker holds it; it was finished by another
# worker meanwhile; this worker ran it but lost its lock to another and wrote nothing.
RAN, HELD, DONE_ELSEWHERE, LOST = "ran", "held", "done elsewhere", "lost"


def done_stamp(run_dir: Path) -> tuple[int, int] | None:
    """Which ``DONE`` marker the run directory holds (inode and modification time; each marker
    is a new file), or None: tells whether a record changed since a worker looked. Take it
    before reading the record it stamps."""
    try:
        st = (run_dir / DONE_MARKER).stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


@dataclass(frozen=True)
class PendingRun:
    """A run to attempt, and the ``DONE`` stamp its directory had when the grid looked (a
    failed record the grid saw is retried; a record written since is another worker's)."""

    spec: RunSpec
    seen: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return self.spec.dirname


@dataclass(frozen=True)
class Attempt:
    """What became of one run in this worker: ``state`` (see RAN, HELD, ...), its record, the
    worker (``host:pid``) and, if it took the run over from a dead worker, who that was."""

    name: str
    state: str
    record: RunRecord | None = None
    worker: str = ""
    recovered: str | None = None


_CONTEXTS: dict[tuple[str, str, str], RunContext] = {}


@dataclass(frozen=True)
class StudyJob:
    """A study's runs as a worker sees them: the config and the shared output directory;
    ``progress``: each run's bars, where this process's stderr is a terminal."""

    cfg: StudyConfig
    out: Path
    progress: bool = False  # per-run step bars (the trainer's epoch bar with ETA)

    def context(self, model: str | None = None) -> RunContext:
        """The study's run context of ``model`` (None: the study's first), one per process and
        model (models and tasks stay loaded)."""
        from clipgap.config import digest

        model = model or self.cfg.model_names[0]
        key = (str(Path(self.out).resolve()), digest(self.cfg.identity()), model)
        if key not in _CONTEXTS:
            progress = self.progress and sys.stderr.isatty()  # never in remote workers' logs
            _CONTEXTS[key] = RunContext.for_study(
                self.cfg, Path(self.out), progress=progress, model=model
            )
        return _CONTEXTS[key]

    def run_dir(self, name: str) -> Path:
        return Path(self.out) / "runs" / name

    def attempt(self, pending: PendingRun) -> Attempt:
        """Claim, clear, run and record one run (see the module doc)."""
        worker = f"{HOST}:{os.getpid()}"
        claim = claim_run(self.out, pending.name, settings=self.cfg.locks)
        if claim is None:
            return Attempt(pending.name, HELD, worker=worker)
        with claim:
            run_dir = self.run_dir(pending.name)
            if done_stamp(run_dir) != pending.seen:  # finished by another worker since
                return Attempt(pending.name, DONE_ELSEWHERE, read_record(run_dir), worker)
            if run_dir.exists():  # left unfinished by a dead worker, failed earlier, or corrupt
                self._clear(run_dir)
            append_history(self.out, pending.name, "start")
            try:
                record = self._execute(pending.spec, run_dir, claim.owner.who())
                claim.check()  # the heartbeat's error of the machine, if it stopped on one
                self._check_still_there(run_dir)
            except OSError as exc:  # a full disk, ...: the CLI says so in one line
                name_path(exc, run_dir)
                raise
            if record is None:  # not this process's to record (a distributed rank > 0)
                return Attempt(pending.name, LOST, worker=worker)
            if not claim.still_held():
                log.error("run %s: another worker took it over; its record is theirs", run_dir)
                return Attempt(pending.name, LOST, worker=worker)
            write_record(run_dir, record)
            append_history(self.out, pending.name, record.status)
        left = None if claim.previous is None else claim.previous.describe()
        return Attempt(pending.name, RAN, record, worker, recovered=left)

    def _clear(self, run_dir: Path) -> None:
        """Remove what an earlier try left in ``run_dir``; a run whose ``DONE`` record cannot be
        used is moved aside to ``OUT/corrupt/<run>.<n>`` instead, its reason logged in the run's
        history, so that nothing is deleted that someone may want to look at."""
        _, corrupt = read_run(run_dir)
        if corrupt is None:
            shutil.rmtree(run_dir)
            return
        aside = Path(self.out) / CORRUPT_DIR
        aside.mkdir(exist_ok=True)
        n = 1
        while (aside / f"{run_dir.name}.{n}").exists():
            n += 1
        target = aside / f"{run_dir.name}.{n}"
        os.rename(run_dir, target)
        log.warning("run %s: %s; moved it to %s and redoing the run", run_dir.name, corrupt, target)
        append_history(self.out, run_dir.name, "corrupt", reason=corrupt, moved_to=str(target))

    def _check_still_there(self, run_dir: Path) -> None:
        """FileNotFoundError naming the study directory (or the run's) when it was deleted
        while the run executed: a record is never written into a directory made anew."""
        for path in (Path(self.out), run_dir):
            if not path.is_dir():
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))

    def _execute(self, run: RunSpec, run_dir: Path, owner: str) -> RunRecord | None:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            run_dir / "config.json", json.dumps(run.config(), indent=1, sort_keys=True)
        )
        ctx = self.context(run.model)
        start = time.perf_counter()
        with run_log(run_dir / "run.log"), torch_threads(self.cfg.resources.cpus_per_run):
            log.info("run %s started: %s", run.dirname, owner)
            try:
                record = execute_run(run, ctx, run_dir=run_dir)
            except RUN_ERRORS as exc:
                log.error("run %s failed: %s", run.dirname, exc)
                record = failure_record(run, exc)
            log.info("run %s ended after %.1f s", run.dirname, time.perf_counter() - start)
        return record

    def record_crash(self, pending: PendingRun, error: BaseException) -> Attempt:
        """After an executor lost a run's worker for good (retries spent): a failure record,
        written only if the run can be claimed (its dead worker's lock is released or stale)."""
        claim = claim_run(self.out, pending.name, settings=self.cfg.locks)
        if claim is None:
            log.error("run %s: its worker died (%s); it stays pending", pending.name, error)
            return Attempt(pending.name, HELD)
        with claim:
            run_dir = self.run_dir(pending.name)
            if done_stamp(run_dir) != pending.seen:
                return Attempt(pending.name, DONE_ELSEWHERE, read_record(run_dir))
            if run_dir.exists():
                shutil.rmtree(run_dir)
            record = failure_record(pending.spec, error)
            write_record(run_dir, record)
            append_history(self.out, pending.name, record.status)
        return Attempt(pending.name, RAN, record)
