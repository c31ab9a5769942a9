"""A study's finished runs, read through :func:`clipgap.record.read_records` only.

A run directory counts once its completion marker exists (the grid writes it last); others are
still running or were interrupted and are skipped, and a corrupt record is left out with a
warning. The record's shape is :mod:`clipgap.record`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from clipgap.errors import DataError
from clipgap.record import DONE_MARKER, RUNS_DIR, RunRecord, read_records

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
    """Read every finished run record under ``study_dir/runs`` (:func:`read_records`).

    Corrupt records are left out with one warning naming them. Raises :class:`DataError` (one
    line) when the directory has no ``runs`` folder or no usable finished run, and
    :class:`RecordSchemaError` when any finished record has another schema version (old records
    are never mixed with new ones).
    """
    root = Path(study_dir)
    runs = root / RUNS_DIR
    if not runs.is_dir():
        raise DataError(f"{root} is not a study directory: {runs} does not exist")
    found = read_records(root)
    if found.corrupt:
        log.warning("%s", found.corrupt_line())
    if found.unfinished:
        log.info("skipping %d run directories without %s", len(found.unfinished), DONE_MARKER)
    if not found.finished:
        raise DataError(
            f"no finished runs in {runs} (no run directory holds a usable {DONE_MARKER} record)"
        )
    records = sorted(found.finished.values(), key=lambda r: (r.task, r.method, r.seed, r.run_id))
    return Study(root=root, records=records, unfinished=list(found.unfinished))
