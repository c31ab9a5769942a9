"""Run records on disk: one run directory holds ``record.json`` and, written last, the
completion marker ``DONE``; a study directory holds its runs under ``runs/``.

:func:`read_records` is the one reader of a study's runs (the study, the report and the
predictors use it): it never stops at a damaged record but reports it, and it refuses records
of another schema version (:class:`~clipgap.record.run.RecordSchemaError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from clipgap.errors import DataError
from clipgap.paths import atomic_write_text
from clipgap.record.parse import parse_record_json
from clipgap.record.run import RecordSchemaError, RunRecord

DONE_MARKER = "DONE"
RECORD_FILE = "record.json"
RUNS_DIR = "runs"


def read_record(run_dir: str | Path) -> RunRecord | None:
    """The record of a finished run directory, or None when its ``DONE`` marker is missing.

    Raises :class:`DataError` when the record is missing or malformed and
    :class:`RecordSchemaError` when it was written under another schema version.
    """
    run_dir = Path(run_dir)
    if not (run_dir / DONE_MARKER).is_file():
        return None
    path = run_dir / RECORD_FILE
    if not path.is_file():
        raise DataError(f"{path} does not exist but its run directory holds {DONE_MARKER}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    return parse_record_json(text, path=path)


def write_record(run_dir: str | Path, record: RunRecord) -> None:
    """Write ``record.json`` then the ``DONE`` marker, each atomically (marker last)."""
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / RECORD_FILE, record.to_json())
    atomic_write_text(run_dir / DONE_MARKER, record.status + "\n")


@dataclass(frozen=True)
class StudyRecords:
    """The runs of a study directory, by run directory name (sorted).

    ``finished``: the records of runs with a ``DONE`` marker (complete and failed runs).
    ``corrupt``: runs with a ``DONE`` marker whose record cannot be used, each with a one-line
    reason naming the file (unreadable JSON, a key that fails validation, no ``record.json``).
    ``unfinished``: run directories without ``DONE`` (running, or interrupted).
    """

    finished: dict[str, RunRecord] = field(default_factory=dict)
    corrupt: dict[str, str] = field(default_factory=dict)
    unfinished: tuple[str, ...] = ()

    @property
    def complete(self) -> list[RunRecord]:
        """The finished runs that completed, in run directory order."""
        return [r for r in self.finished.values() if r.complete]

    def corrupt_line(self) -> str:
        """One line naming the corrupt runs and why each is (for a warning)."""
        listed = "; ".join(f"{name}: {why}" for name, why in self.corrupt.items())
        return f"leaving out {len(self.corrupt)} corrupt run records: {listed}"


def read_records(study_dir: str | Path) -> StudyRecords:
    """Every run under ``study_dir/runs`` (nothing when there is no such folder).

    A damaged record does not stop the reader: it is reported in ``corrupt``. Raises
    :class:`RecordSchemaError` (one line: re-run into a new ``--out``) when any finished record
    was written under another schema version: old records are never mixed with new ones.
    """
    runs = Path(study_dir) / RUNS_DIR
    if not runs.is_dir():
        return StudyRecords()
    finished, corrupt, unfinished, old = {}, {}, [], []
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()):
        try:
            record = read_record(run_dir)
        except RecordSchemaError as exc:
            old.append(exc)
        except DataError as exc:
            corrupt[run_dir.name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        else:
            if record is None:
                unfinished.append(run_dir.name)
            else:
                finished[run_dir.name] = record
    if old:
        total = len(old) + len(finished) + len(corrupt)
        raise RecordSchemaError(
            f"{len(old)} of the {total} finished runs in {runs} have another record schema; "
            f"first: {old[0]}"
        )
    return StudyRecords(finished=finished, corrupt=corrupt, unfinished=tuple(unfinished))
