"""A study's finished runs, read through :func:`clipgap.record.read_record` only.

A run directory counts once its completion marker exists (the grid writes it last); others are
still running or were interrupted and are skipped. The record's shape is :mod:`clipgap.record`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from clipgap.errors import DataError
from clipgap.record import DONE_MARKER, RecordSchemaError, RunRecord, read_record

log = logging.getLogger(__name__)


@dataclass
class Study:
    """The finished runs of a study directory, sorted by (task, method, seed, run_id)."""

    root: Path
    records: list[RunRecord]
    unfinished: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The study directory's name (resolved, so ``.`` gives a real name)."""
        return self.root.resolve().name

    @property
    def complete(self) -> list[RunRecord]:
        return [r for r in self.records if r.complete]

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.records if not r.complete]


def load_study(study_dir: str | Path) -> Study:
    """Read every finished run record under ``study_dir/runs``.

    Raises :class:`DataError` (one line) when the directory has no ``runs`` folder, when no run
    has finished, or when a finished run's record is missing or malformed, and
    :class:`RecordSchemaError` when any finished record has another schema version (old records
    are never mixed with new ones).
    """
    root = Path(study_dir)
    runs = root / "runs"
    if not runs.is_dir():
        raise DataError(f"{root} is not a study directory: {runs} does not exist")
    records, unfinished, old = [], [], []
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()):
        try:
            record = read_record(run_dir)
        except RecordSchemaError as exc:
            old.append(exc)
            continue
        if record is None:
            unfinished.append(run_dir.name)
        else:
            records.append(record)
    if old:
        finished = len(old) + len(records)
        raise RecordSchemaError(
            f"{len(old)} of the {finished} finished runs in {runs} have another record schema; "
            f"first: {old[0]}"
        )
    if unfinished:
        log.info("skipping %d run directories without %s", len(unfinished), DONE_MARKER)
    if not records:
        raise DataError(
            f"no finished runs in {runs} (no run directory holds a {DONE_MARKER} marker)"
        )
    records.sort(key=lambda r: (r.task, r.method, r.seed, r.run_id))
    return Study(root=root, records=records, unfinished=unfinished)
