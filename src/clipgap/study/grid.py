"""The resumable grid: runs are files, so a study can be interrupted and run again.

Layout of a study directory::

    OUT/study.json                 identities of the studies this directory holds
    OUT/study.yaml                 the resolved config of the latest invocation
    OUT/zero_shot.json             zero-shot numbers and difficulty, computed once
    OUT/runs/<task>__<method>__k<shots>__s<seed>__<hash>/
        config.json  run.log  record.json  DONE   (DONE is written last, atomically)
    OUT/report/                    report.md, report.html, results.csv, figures/

A directory whose records were written under another schema version is refused (one line saying
to re-run into a new ``--out``): old and new records are never mixed, and never skipped.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm.auto import tqdm

from clipgap.config import to_dict
from clipgap.data import digest
from clipgap.errors import ClipgapError, ConfigError
from clipgap.paths import atomic_write_text
from clipgap.record import RunRecord, read_record, write_record
from clipgap.study.config import ALL_SHOTS, StudyConfig, shots_label
from clipgap.study.context import RunContext
from clipgap.study.executor import Executor, LocalExecutor
from clipgap.study.plan import RunSpec, plan_runs
from clipgap.study.runlog import run_log
from clipgap.study.runner import check_run_shots, execute_run, failure_record

log = logging.getLogger(__name__)


@dataclass
class StudyOutcome:
    out_dir: Path
    planned: int = 0
    skipped: int = 0
    completed: int = 0
    failed: list[str] = field(default_factory=list)
    records: list[RunRecord] = field(default_factory=list)


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
    """Make ``out`` this study's directory, refusing one that holds a different study."""
    ident = cfg.identity()
    key = digest(ident)
    marker = out / "study.json"
    if marker.is_file():
        held = json.loads(marker.read_text())
        if key not in held.get("studies", {}):
            if not add:
                raise ConfigError(
                    f"{out} holds runs of a different study; choose another --out, or pass --add "
                    f"to add this study's runs to it"
                )
            held["studies"][key] = ident
            atomic_write_text(marker, json.dumps(held, indent=1, sort_keys=True))
    elif (out / "runs").is_dir() and any((out / "runs").iterdir()):
        raise ConfigError(f"{out}/runs exists but {out} has no study.json; refusing to mix runs")
    else:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(marker, json.dumps({"studies": {key: ident}}, indent=1, sort_keys=True))
    resolved = to_dict(cfg)
    resolved["shots"] = [ALL_SHOTS if k is None else k for k in cfg.shots]
    atomic_write_text(out / "study.yaml", yaml.safe_dump(resolved, sort_keys=False))


def run_study(
    cfg: StudyConfig,
    *,
    add: bool = False,
    executor: Executor | None = None,
    progress: bool = True,
    report: bool = True,
) -> StudyOutcome:
    """Run every unfinished run of the study, then (re)build the report.

    Before anything is written: records of another schema and shots larger than a task's
    smallest class are refused, each with one line.
    """
    out = Path(cfg.out)
    runs = plan_runs(cfg)
    finished = finished_records(out)
    ctx = RunContext.for_study(cfg, out, progress=progress)
    for run in runs:
        check_run_shots(run, ctx)
    claim_study_dir(cfg, out, add=add)
    outcome = StudyOutcome(out_dir=out, planned=len(runs))
    pending: list[RunSpec] = []
    for run in runs:
        record = finished.get(run.dirname)
        if record is not None and record.complete:
            outcome.skipped += 1
            outcome.records.append(record)
            continue
        run_dir = out / "runs" / run.dirname
        if run_dir.exists():  # unfinished (killed) or failed earlier: start clean
            shutil.rmtree(run_dir)
        pending.append(run)
    _execute(pending, ctx, outcome, executor=executor or LocalExecutor(), progress=progress)
    if report:
        from clipgap.report import build_report

        build_report(out)
    return outcome


def _execute(
    pending: list[RunSpec], ctx: RunContext, outcome: StudyOutcome, *, executor, progress: bool
) -> None:
    out = outcome.out_dir
    done = outcome.skipped
    bar = tqdm(
        total=done + len(pending), initial=done, desc="study", unit="run", disable=not progress
    )

    def work(run: RunSpec) -> RunRecord:
        run_dir = out / "runs" / run.dirname
        run_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(run.config(), indent=1, sort_keys=True)
        atomic_write_text(run_dir / "config.json", text)
        bar.set_postfix_str(f"{run.task} {run.method} k={shots_label(run.shots)} s{run.seed}")
        with run_log(run_dir / "run.log"):
            try:
                return execute_run(run, ctx)
            except (ClipgapError, RuntimeError, ValueError, FloatingPointError) as exc:
                log.error("run %s failed: %s", run.dirname, exc)
                return failure_record(run, exc)

    def on_done(run: RunSpec, record: RunRecord) -> None:
        write_record(out / "runs" / run.dirname, record)
        outcome.records.append(record)
        if record.complete:
            outcome.completed += 1
        else:
            outcome.failed.append(f"{run.dirname}: {record.error}")
        bar.update(1)

    try:
        executor.run(pending, work, on_done)
    finally:
        bar.close()
