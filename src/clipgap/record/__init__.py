"""The run record: the one artifact a run leaves, written by the study, ``clipgap finetune`` and
``clipgap evaluate``, and read by the report, the predictors and the study itself.

Modules, each importing only those above it: ``values`` (difficulty, scores, alpha points; the
difficulty keys and the paper's methods), ``outcomes`` (the one computation of dID, dDG, CF and
the normalised gain, and their names and labels), ``run`` (``RunRecord``, the schema version,
the JSON object), ``parse`` (validating a JSON object into a record), ``files`` (``record.json``
and ``DONE`` on disk; :func:`read_records`, the one reader of a study's runs). The JSON shape is
documented in ``docs/records.md``.
"""

from clipgap.record.files import (
    DONE_MARKER,
    RECORD_FILE,
    RUNS_DIR,
    StudyRecords,
    read_record,
    read_records,
    write_record,
)
from clipgap.record.outcomes import (
    NORMALISED_GAIN,
    OUTCOME_LABELS,
    OUTCOMES,
    PREDICTED_OUTCOMES,
    Outcomes,
    compute_outcomes,
    mean_or_none,
)
from clipgap.record.parse import parse_record, parse_record_json
from clipgap.record.run import (
    SCHEMA_VERSION,
    STATUSES,
    VOLATILE_KEYS,
    CurvePoint,
    RecordSchemaError,
    RunRecord,
)
from clipgap.record.values import (
    DIFFICULTY_KEYS,
    DIFFICULTY_SPLITS,
    PAPER_METHODS,
    AlphaPoint,
    Difficulty,
    Scores,
)

__all__ = [
    "DIFFICULTY_KEYS",
    "DIFFICULTY_SPLITS",
    "DONE_MARKER",
    "NORMALISED_GAIN",
    "OUTCOMES",
    "OUTCOME_LABELS",
    "PAPER_METHODS",
    "PREDICTED_OUTCOMES",
    "RECORD_FILE",
    "RUNS_DIR",
    "SCHEMA_VERSION",
    "STATUSES",
    "VOLATILE_KEYS",
    "AlphaPoint",
    "CurvePoint",
    "Difficulty",
    "Outcomes",
    "RecordSchemaError",
    "RunRecord",
    "Scores",
    "StudyRecords",
    "compute_outcomes",
    "mean_or_none",
    "parse_record",
    "parse_record_json",
    "read_record",
    "read_records",
    "write_record",
]
