"""Where a shared study directory stands: which runs are done, running (and by whom), failed,
corrupt (a ``DONE`` marker whose record cannot be used: the study redoes the run) or pending.
Read from the files alone (records, owner files); no lock is touched, so asking never disturbs a
worker."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from clipgap.errors import ConfigError, DataError
from clipgap.record import RecordSchemaError, RunRecord, read_record
from clipgap.study.execution import LockConfig
from clipgap.study.locks import Owner, run_owner
from clipgap.study.plan import RunSpec

STATES = ("done", "running", "failed", "corrupt", "pending")


@dataclass(frozen=True)
class RunState:
    """One run: ``state`` (one of STATES), its live holder (``running``), its error
    (``failed``), why its record cannot be used (``corrupt``), or the dead worker it was left by
    (``pending``, to be recovered)."""

    name: str
    state: str
    owner: Owner | None = None
    error: str | None = None


@dataclass
class StudyStatus:
    out: Path
    runs: list[RunState] = field(default_factory=list)

    def of(self, state: str) -> list[RunState]:
        return [r for r in self.runs if r.state == state]

    def counts(self) -> dict[str, int]:
        return {s: len(self.of(s)) for s in STATES}

    @property
    def finished(self) -> bool:
        """Every run has a usable record (complete or failed)."""
        return not self.of("running") and not self.of("pending") and not self.of("corrupt")


def read_run(run_dir: Path) -> tuple[RunRecord | None, str | None]:
    """``(record, None)`` of a finished run, ``(None, None)`` of an unfinished one and
    ``(None, why)`` of a corrupt one: ``DONE`` present but ``record.json`` missing, unreadable or
    invalid (``why``: one line naming the file). A record of another schema version raises
    :class:`~clipgap.record.RecordSchemaError`: it is old, not corrupt."""
    try:
        return read_record(run_dir), None
    except RecordSchemaError:
        raise
    except DataError as exc:
        return None, (str(exc).splitlines() or [type(exc).__name__])[0]


def run_state(out: Path, name: str, *, stale_after: float, now: float | None = None) -> RunState:
    # the owner first: a holder writes the record before it removes its owner file, so a run
    # is never seen without both while its record is being written
    owner = run_owner(out, name)
    record, corrupt = read_run(out / "runs" / name)
    if record is not None:
        if record.complete:
            return RunState(name, "done")
        return RunState(name, "failed", error=record.error)
    if owner is not None and owner.alive(stale_after=stale_after, now=now):
        return RunState(name, "running", owner=owner)
    if corrupt is not None:
        return RunState(name, "corrupt", owner=owner, error=corrupt)
    return RunState(name, "pending", owner=owner)


def study_status(out: str | Path, runs: list[RunSpec], *, stale_after: float) -> StudyStatus:
    out, now = Path(out), time.time()
    names = sorted({r.dirname for r in runs})
    return StudyStatus(out, [run_state(out, n, stale_after=stale_after, now=now) for n in names])


def planned_runs(out: str | Path) -> list[RunSpec]:
    """Every run of every study the directory holds (``study.json``), in plan order."""
    from clipgap.study.config import study_from_dict
    from clipgap.study.plan import plan_runs

    out = Path(out)
    marker = out / "study.json"
    if not marker.is_file():
        raise ConfigError(f"{out} is not a study directory (it has no study.json)")
    try:
        studies = json.loads(marker.read_text())["studies"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{marker}: cannot read the studies it lists ({exc})") from None
    runs: dict[str, RunSpec] = {}
    for ident in studies.values():
        cfg = study_from_dict({**ident, "out": str(out)}, where=str(marker))
        runs.update((r.dirname, r) for r in plan_runs(cfg))
    return list(runs.values())


def stale_after_of(out: str | Path) -> float:
    """The lock timeout of the directory's latest invocation (``study.yaml``), else the default."""
    try:
        resolved = yaml.safe_load((Path(out) / "study.yaml").read_text()) or {}
        return float(resolved["locks"]["stale_after_s"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return LockConfig().stale_after_s


def directory_status(out: str | Path) -> StudyStatus:
    """The status of every planned run of study directory ``out`` (``clipgap study --status``)."""
    return study_status(out, planned_runs(out), stale_after=stale_after_of(out))
