"""The resumable grid: runs are files, so a study can be interrupted and run again, and several
workers can share one output directory.

Layout of a study directory::

    OUT/study.json                 identities of the studies this directory holds
    OUT/study.yaml                 the resolved config of the latest invocation
    OUT/zero_shot.json             zero-shot numbers and difficulty, computed once
    OUT/runs/<task>__<method>__k<shots>__s<seed>__<hash>/
        config.json  run.log  record.json  DONE   (DONE is written last, atomically)
    OUT/locks/                     run locks, their owners and histories (clipgap.study.locks)
    OUT/report/                    report.md, report.html, results.csv, figures/
    OUT/corrupt/<run>.<n>/         run directories whose DONE record could not be used, moved
                                   aside (the reason is in the run's history) and redone

Each run is claimed with its own lock before anything of it is touched, so workers started on
the same directory (one per GPU, a SLURM array with ``--shard I/N``, Ray tasks) each execute a
run once, never delete a run another worker holds, and redo a run whose worker died. The report
is built by a worker that finds every run of the grid finished (the last one to end), through
the callback the CLI hands to :func:`run_study` (the study does not import the report).

A run whose record is corrupt (``DONE`` with a ``record.json`` that is missing, unreadable or
invalid) is not finished: it is moved aside and redone. A damaged ``study.json`` is written
again (when every run in the directory is this study's); a damaged ``zero_shot.json`` is
computed again (:mod:`clipgap.study.shared`). A directory whose records were written under
another schema version is refused (one line saying to re-run into a new ``--out``): old and new
records are never mixed, and never skipped.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm.auto import tqdm

from clipgap.config import to_dict
from clipgap.data import digest
from clipgap.errors import ConfigError
from clipgap.paths import atomic_write_text
from clipgap.record import RUNS_DIR, RunRecord, read_records
from clipgap.study.attempt import (
    DONE_ELSEWHERE,
    HELD,
    RAN,
    Attempt,
    PendingRun,
    StudyJob,
    done_stamp,
)
from clipgap.study.config import ALL_SHOTS, StudyConfig
from clipgap.study.executors import Executor, make_executor
from clipgap.study.plan import RunSpec, plan_runs
from clipgap.study.runner import check_run_shots
from clipgap.study.shared import file_lock
from clipgap.study.status import StudyStatus, read_run, run_state, study_status

log = logging.getLogger(__name__)

# How often a worker looks again for runs whose worker died while it ran others.
MAX_PASSES = 5


@dataclass
class StudyOutcome:
    """What one invocation did. ``elsewhere``: runs of its share another worker ran or runs;
    ``status``: the whole grid at the end; ``report_built``: whether this worker ran the
    ``on_finished`` callback of :func:`run_study` (the CLI builds the report there)."""

    out_dir: Path
    planned: int = 0
    skipped: int = 0
    completed: int = 0
    elsewhere: int = 0
    failed: list[str] = field(default_factory=list)
    records: list[RunRecord] = field(default_factory=list)
    status: StudyStatus | None = None
    report_built: bool = False


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N: this worker's share of the grid."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or not int(m.group(1)) < int(m.group(2)):
        raise ConfigError(
            f"--shard {text}: expected I/N with 0 <= I < N, e.g. --shard 0/4 (a SLURM array "
            f"--array=0-3 gives --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)"
        )
    return int(m.group(1)), int(m.group(2))


def shard_runs(runs: Sequence[RunSpec], shard: tuple[int, int] | None) -> list[RunSpec]:
    """Every N-th run of the planned grid from the I-th on (plan order, so shards started at
    any time partition the grid exactly, whatever is already done)."""
    if shard is None:
        return list(runs)
    index, count = shard
    return [run for i, run in enumerate(runs) if i % count == index]


def claim_study_dir(
    cfg: StudyConfig, out: Path, *, add: bool, ours: set[str] | None = None
) -> None:
    """Make ``out`` this study's directory, refusing one that holds a different study.

    ``study.json`` (and ``study.yaml``) are read, changed and written under the lock of
    ``study.json``: workers start together. A damaged ``study.json`` is written again for this
    study when every run directory is one of its runs (``ours``), and refused otherwise."""
    ident = cfg.identity()
    key = digest(ident)
    marker = out / "study.json"
    with file_lock(marker):
        if marker.is_file():
            held, recovered = _held_studies(marker, ours or set())
            if key not in held["studies"]:
                if not add and not recovered:
                    raise ConfigError(refusal(out, ident, held["studies"].values()))
                held["studies"][key] = ident
                atomic_write_text(marker, json.dumps(held, indent=1, sort_keys=True))
        elif (out / "runs").is_dir() and any((out / "runs").iterdir()):
            raise ConfigError(
                f"{out}/runs exists but {out} has no study.json; refusing to mix runs"
            )
        else:
            text = json.dumps({"studies": {key: ident}}, indent=1, sort_keys=True)
            atomic_write_text(marker, text)
        resolved = to_dict(cfg)
        if cfg.search is not None:
            resolved["search"] = cfg.identity()["search"]
        resolved["shots"] = [ALL_SHOTS if k is None else k for k in cfg.shots]
        atomic_write_text(out / "study.yaml", yaml.safe_dump(resolved, sort_keys=False))


def _held_studies(marker: Path, ours: set[str]) -> tuple[dict, bool]:
    """(``study.json``'s content, False), or ({"studies": {}}, True) for a damaged one whose
    runs are all ``ours`` (logged); ConfigError for a damaged one holding runs of others."""
    try:
        held = json.loads(marker.read_text())
        if isinstance(held, dict) and isinstance(held.get("studies"), dict):
            return held, False
        why = "no studies object"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
    runs = marker.parent / RUNS_DIR
    others = sorted(p.name for p in runs.iterdir() if p.name not in ours) if runs.is_dir() else []
    if others:
        raise ConfigError(
            f"{marker} is damaged ({why}) and {runs} holds runs of another study ({others[0]}"
            f"{', ...' if len(others) > 1 else ''}); restore {marker.name}, or choose another --out"
        )
    log.warning("%s is damaged (%s); writing it again for this study (every run in %s is one "
                "of its runs)", marker, why, runs)  # fmt: skip
    return {"studies": {}}, True


def refusal(out: Path, ident: dict, held) -> str:
    """Why ``out`` is refused to a study of identity ``ident`` (one line): another search of the
    same study, or another study."""
    bare = {k: v for k, v in ident.items() if k != "search"}
    if any({k: v for k, v in h.items() if k != "search"} == bare for h in held):
        return (
            f"{out} holds runs of another search of this study (search: is not the same); "
            "choose another --out, or pass --add to add this search's runs to it (trials drawn "
            "by both are shared)"
        )
    return (
        f"{out} holds runs of a different study; choose another --out, or pass "
        f"--add to add this study's runs to it"
    )


def run_study(
    cfg: StudyConfig,
    *,
    add: bool = False,
    executor: Executor | None = None,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    on_finished: Callable[[Path], object] | None = None,
) -> StudyOutcome:
    """Run every unfinished run of the study (of its ``shard`` I/N: every N-th run of the grid
    from the I-th); then, if every run of the grid is finished, call ``on_finished(out)`` under
    the study's report lock (the CLI passes the report build: the last worker builds it).

    Before anything is written: records of another schema, shots larger than a task's smallest
    class and resources the executor cannot give are refused, each with one line.
    """
    out = Path(cfg.out)
    planned = plan_runs(cfg)
    runs = shard_runs(planned, shard)
    read_records(out)  # refuses a directory with records of another schema
    job = StudyJob(cfg, out, progress=progress)
    for run in runs:
        check_run_shots(run, job.context(run.model))
    executor = executor or make_executor(cfg)
    outcome = StudyOutcome(out_dir=out, planned=len(runs))
    try:
        executor.prepare(runs)
        claim_study_dir(cfg, out, add=add, ours={r.dirname for r in planned})
        pending = []
        for run in runs:
            seen = done_stamp(out / "runs" / run.dirname)  # before the record it stamps
            record, _ = read_run(out / "runs" / run.dirname)  # a corrupt one is redone
            if record is not None and record.complete:
                outcome.skipped += 1
            else:
                pending.append(PendingRun(run, seen))
        _execute(job, pending, outcome, executor=executor, progress=progress)
    finally:
        executor.close()
    finished = read_records(out).finished
    outcome.records = [finished[x.dirname] for x in runs if x.dirname in finished]
    outcome.status = study_status(out, planned, stale_after=cfg.locks.stale_after_s)
    if on_finished is not None and outcome.status.finished:
        with file_lock(out / "report"):
            on_finished(out)
        outcome.report_built = True
    elif on_finished is not None:
        counts = outcome.status.counts()
        log.info(
            "report not built: %d runs running elsewhere, %d pending; the last worker builds it",
            counts["running"],
            counts["pending"],
        )
    return outcome


def _execute(
    job: StudyJob,
    pending: list[PendingRun],
    outcome: StudyOutcome,
    *,
    executor: Executor,
    progress: bool,
) -> None:
    """Attempt every pending run; then again those another worker held when tried, if that
    worker has died since (a few passes at most)."""
    done = outcome.skipped
    bar = tqdm(
        total=done + len(pending), initial=done, desc="study", unit="run", disable=not progress
    )
    held: list[str] = []

    def on_done(attempt: Attempt) -> None:
        if attempt.state == RAN:
            if attempt.record.complete:
                outcome.completed += 1
            else:
                outcome.failed.append(f"{attempt.name}: {attempt.record.error}")
        elif attempt.state != DONE_ELSEWHERE:  # HELD or LOST: another worker has it
            held.append(attempt.name)
        if attempt.state != HELD:
            bar.update(1)

    stale_after = job.cfg.locks.stale_after_s
    todo = pending
    try:
        for _ in range(MAX_PASSES):
            held.clear()
            executor.run(job, todo, on_done)
            todo = [
                p
                for p in todo
                if p.name in held
                and run_state(job.out, p.name, stale_after=stale_after).state
                in ("pending", "corrupt")
            ]
            if not todo:
                break
            log.info("%d runs left by workers that died meanwhile: taking them", len(todo))
    finally:
        bar.close()
    outcome.elsewhere = len(pending) - outcome.completed - len(outcome.failed)
