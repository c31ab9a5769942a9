"""The resumable grid: runs are files, so a study can be interrupted and run again.

Layout of a study directory::

    OUT/study.json                 identities of the studies this directory holds
    OUT/study.yaml                 the resolved config of the latest invocation
    OUT/zero_shot.json             zero-shot numbers, computed once
    OUT/runs/<task>__<method>__s<seed>__<hash>/
        config.json  run.log  record.json  DONE   (DONE is written last, atomically)
    OUT/report/                    report.md, report.html, results.csv, figures/
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
from clipgap.study.config import StudyConfig
from clipgap.study.context import StudyContext
from clipgap.study.executor import Executor, LocalExecutor
from clipgap.study.plan import RunSpec, plan_runs
from clipgap.study.runner import execute_run, failure_record

log = logging.getLogger(__name__)
DONE = "DONE"
RECORD = "record.json"


@dataclass
class StudyOutcome:
    out_dir: Path
    planned: int = 0
    skipped: int = 0
    completed: int = 0
    failed: list[str] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)


def read_record(run_dir: Path) -> dict | None:
    """The record of a finished run, or None: a run without its DONE marker has no record."""
    if not (run_dir / DONE).is_file():
        return None
    return json.loads((run_dir / RECORD).read_text())


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
    atomic_write_text(out / "study.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))


def _finish(run_dir: Path, record: dict) -> None:
    atomic_write_text(run_dir / RECORD, json.dumps(record, indent=1, sort_keys=True))
    atomic_write_text(run_dir / DONE, record["status"] + "\n")


class _RunLog:
    """Sends this package's log records to the run's own ``run.log`` while it runs."""

    def __init__(self, path: Path) -> None:
        self.handler = logging.FileHandler(path, mode="w")
        self.handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        self.handler.setLevel(logging.INFO)
        self.logger = logging.getLogger("clipgap")

    def __enter__(self):
        self.old_level = self.logger.level
        self.logger.addHandler(self.handler)
        if self.logger.getEffectiveLevel() > logging.INFO:
            self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.old_level)
        self.handler.close()


def run_study(
    cfg: StudyConfig,
    *,
    add: bool = False,
    executor: Executor | None = None,
    progress: bool = True,
    report: bool = True,
) -> StudyOutcome:
    """Run every unfinished run of the study, then (re)build the report."""
    out = Path(cfg.out)
    runs = plan_runs(cfg)
    claim_study_dir(cfg, out, add=add)
    outcome = StudyOutcome(out_dir=out, planned=len(runs))
    pending: list[RunSpec] = []
    for run in runs:
        run_dir = out / "runs" / run.dirname
        record = read_record(run_dir)
        if record is not None and record.get("status") == "complete":
            outcome.skipped += 1
            outcome.records.append(record)
            continue
        if run_dir.exists():  # unfinished (killed) or failed earlier: start clean
            shutil.rmtree(run_dir)
        pending.append(run)

    ctx = StudyContext(cfg, out, progress=False)
    bar = tqdm(
        total=len(runs), initial=outcome.skipped, desc="study", unit="run", disable=not progress
    )

    def work(run: RunSpec) -> dict:
        run_dir = out / "runs" / run.dirname
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            run_dir / "config.json", json.dumps(run.config(), indent=1, sort_keys=True)
        )
        bar.set_postfix_str(f"{run.task} {run.method} s{run.seed}")
        with _RunLog(run_dir / "run.log"):
            try:
                return execute_run(run, ctx)
            except (ClipgapError, RuntimeError, ValueError, FloatingPointError) as exc:
                log.error("run %s failed: %s", run.dirname, exc)
                return failure_record(run, exc)

    def on_done(run: RunSpec, record: dict) -> None:
        _finish(out / "runs" / run.dirname, record)
        outcome.records.append(record)
        if record["status"] == "complete":
            outcome.completed += 1
        else:
            outcome.failed.append(f"{run.dirname}: {record['error']}")
        bar.update(1)

    try:
        (executor or LocalExecutor()).run(pending, work, on_done)
    finally:
        bar.close()
    if report:
        from clipgap.report import build_report

        build_report(out)
    return outcome
