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

Each run is claimed with its own lock before anything of it is touched, so workers started on
the same directory (one per GPU, a SLURM array with ``--shard I/N``, Ray tasks) each execute a
run once, never delete a run another worker holds, and redo a run whose worker died. The report
is built by a worker that finds every run of the grid finished (the last one to end).

A directory whose records were written under another schema version is refused (one line saying
to re-run into a new ``--out``): old and new records are never mixed, and never skipped.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm.auto import tqdm

from clipgap.config import to_dict
from clipgap.data import digest
from clipgap.errors import ConfigError
from clipgap.paths import atomic_write_text
from clipgap.record import RunRecord, read_record
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
from clipgap.study.status import StudyStatus, run_state, study_status

log = logging.getLogger(__name__)

# How often a worker looks again for runs whose worker died while it ran others.
MAX_PASSES = 5


@dataclass
class StudyOutcome:
    """What one invocation did. ``elsewhere``: runs of its share another worker ran or runs;
    ``status``: the whole grid at the end; ``report_built``: whether this worker built it."""

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


def finished_records(out: Path) -> dict[str, RunRecord]:
    """{run directory name: record} of every finished run under ``out/runs``.

    Raises :class:`~clipgap.record.RecordSchemaError` (one line: re-run into a new ``--out``)
    when any record was written under another schema version.
    """
    runs = out / "runs"
    if not runs.is_dir():
        return {}
    found = {}
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()):
        record = read_record(run_dir)
        if record is not None:
            found[run_dir.name] = record
    return found


def claim_study_dir(cfg: StudyConfig, out: Path, *, add: bool) -> None:
    """Make ``out`` this study's directory, refusing one that holds a different study.

    ``study.json`` (and ``study.yaml``) are read, changed and written under the lock of
    ``study.json``: workers start together."""
    ident = cfg.identity()
    key = digest(ident)
    marker = out / "study.json"
    with file_lock(marker):
        if marker.is_file():
            held = json.loads(marker.read_text())
            if key not in held.get("studies", {}):
                if not add:
                    raise ConfigError(refusal(out, ident, held.get("studies", {}).values()))
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
    report: bool = True,
) -> StudyOutcome:
    """Run every unfinished run of the study (of its ``shard`` I/N: every N-th run of the grid
    from the I-th), then build the report if every run of the grid is finished.

    Before anything is written: records of another schema, shots larger than a task's smallest
    class and resources the executor cannot give are refused, each with one line.
    """
    out = Path(cfg.out)
    planned = plan_runs(cfg)
    runs = shard_runs(planned, shard)
    finished_records(out)  # refuses a directory with records of another schema
    job = StudyJob(cfg, out, progress=progress)
    for run in runs:
        check_run_shots(run, job.context())
    executor = executor or make_executor(cfg)
    outcome = StudyOutcome(out_dir=out, planned=len(runs))
    try:
        executor.prepare(runs)
        claim_study_dir(cfg, out, add=add)
        pending = []
        for run in runs:
            seen = done_stamp(out / "runs" / run.dirname)  # before the record it stamps
            record = read_record(out / "runs" / run.dirname)
            if record is not None and record.complete:
                outcome.skipped += 1
            else:
                pending.append(PendingRun(run, seen))
        _execute(job, pending, outcome, executor=executor, progress=progress)
    finally:
        executor.close()
    outcome.records = [r for r in (read_record(out / "runs" / x.dirname) for x in runs) if r]
    outcome.status = study_status(out, planned, stale_after=cfg.locks.stale_after_s)
    if report and outcome.status.finished:
        from clipgap.report import build_report

        with file_lock(out / "report"):
            build_report(out)
        outcome.report_built = True
    elif report:
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
                and run_state(job.out, p.name, stale_after=stale_after).state == "pending"
            ]
            if not todo:
                break
            log.info("%d runs left by workers that died meanwhile: taking them", len(todo))
    finally:
        bar.close()
    outcome.elsewhere = len(pending) - outcome.completed - len(outcome.failed)
