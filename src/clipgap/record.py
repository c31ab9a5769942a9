"""The run record: the one artifact a run leaves, written by the study, ``clipgap finetune`` and
``clipgap evaluate``, and read by the report.

A run directory holds ``record.json`` and, written last, the completion marker ``DONE``; a
directory without the marker has no record. The JSON shape is documented in ``docs/records.md``;
this module is its only definition (schema version, file names, difficulty keys, the paper's
methods). Deltas (dID, dDG, CF) are derived from the stored accuracies, written into the JSON for
readers, and checked against them when a record is read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from clipgap.errors import DataError
from clipgap.record_check import Checker, mean_or_none

__all__ = [
    "DIFFICULTY_KEYS",
    "DIFFICULTY_SPLITS",
    "DONE_MARKER",
    "PAPER_METHODS",
    "RECORD_FILE",
    "SCHEMA_VERSION",
    "VOLATILE_KEYS",
    "AlphaPoint",
    "Difficulty",
    "RecordSchemaError",
    "RunRecord",
    "Scores",
    "read_record",
    "write_record",
]

SCHEMA_VERSION = 2
DONE_MARKER = "DONE"
RECORD_FILE = "record.json"
STATUSES = ("complete", "failed")
# The paper's five methods (arXiv 2402.09613), in its order: the only methods claims pool.
PAPER_METHODS = ("full", "aclip", "bitfit", "lora", "clip_adapter")
# Difficulty measures of a task under the original model; a value is None where undefined.
DIFFICULTY_KEYS = (
    "silhouette_modality",
    "silhouette_class",
    "acs",
    "zero_shot_accuracy",
    "modality_gap",
    "iimm",
    "logme",
    "hscore",
    "transrate",
    "gbc",
    # cheap probes (optional: records written before they existed read as None)
    "probe_accuracy",
    "knn_accuracy",
)
DIFFICULTY_SPLITS = ("train", "test")
# Keys that measure the machine rather than the science: they differ between two otherwise
# identical runs and are left out when records are compared.
VOLATILE_KEYS = ("seconds", "eval_seconds", "peak_memory_mb", "versions", "device")


class RecordSchemaError(DataError):
    """A record written under another schema version (never read as if it were current)."""


def _number_or_none(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class Difficulty:
    """A task's difficulty under the original model (what ``task_difficulty`` measures),
    on ``split`` (``train`` by default in studies) of ``n_images`` images and ``n_classes``
    classes. Measures are None where undefined (e.g. one class) or not measured."""

    n_images: int
    n_classes: int
    split: str = "test"
    silhouette_modality: float | None = None
    silhouette_class: float | None = None
    acs: float | None = None
    zero_shot_accuracy: float | None = None
    modality_gap: float | None = None
    iimm: float | None = None
    logme: float | None = None
    hscore: float | None = None
    transrate: float | None = None
    gbc: float | None = None
    probe_accuracy: float | None = None
    knn_accuracy: float | None = None

    @classmethod
    def from_measures(cls, measures: dict, *, split: str) -> Difficulty:
        """From ``task_difficulty``'s dict (NaN -> None; unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        extra = sorted(set(measures) - known)
        if extra:
            raise DataError(f"difficulty has unknown keys {extra}; known: {sorted(known)}")
        values = {k: _number_or_none(measures.get(k)) for k in DIFFICULTY_KEYS}
        return cls(
            n_images=int(measures["n_images"]),
            n_classes=int(measures["n_classes"]),
            split=split,
            **values,
        )

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def value(self, key: str) -> float | None:
        return getattr(self, key)


@dataclass(frozen=True)
class Scores:
    """Top-1 accuracies in [0, 1]: ``id`` on the task, ``dg`` per shift domain spec,
    ``control`` per control task spec."""

    id: float
    dg: dict[str, float] = field(default_factory=dict)
    control: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"id": self.id, "dg": dict(self.dg), "control": dict(self.control)}


@dataclass(frozen=True)
class AlphaPoint:
    """Scores of the model interpolated at ``alpha`` (0 = zero-shot, 1 = fine-tuned) between
    the original and the fine-tuned weights, and its validation accuracy (for choosing alpha)."""

    alpha: float
    scores: Scores
    val_accuracy: float | None = None

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "val_accuracy": self.val_accuracy, **self.scores.to_dict()}


def _deltas(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in after if k in before}


@dataclass(frozen=True)
class RunRecord:
    """One run: its identity, and for a complete run its difficulty, scores and training facts.

    ``config`` is the resolved run config (its hash is ``run_id``). ``shots`` is the number of
    training images per class (None = the full split). ``best_epoch`` >= 1 is the trained epoch
    chosen on validation accuracy; ``val_accuracy_start`` is the starting model's validation
    accuracy, kept for information. ``history`` has one entry per epoch (0 = the start).
    """

    run_id: str
    status: str
    task: str
    method: str
    seed: int
    preset: str
    model: str
    config: dict[str, Any]
    error: str | None = None
    shots: int | None = None
    difficulty: Difficulty | None = None
    zero_shot: Scores | None = None
    finetuned: Scores | None = None
    trainable_params: int | None = None
    best_epoch: int | None = None
    val_accuracy: float | None = None
    val_accuracy_start: float | None = None
    history: tuple[dict, ...] = ()
    interpolation: tuple[AlphaPoint, ...] = ()
    seconds: float | None = None
    eval_seconds: float | None = None
    peak_memory_mb: float | None = None
    versions: dict[str, str] = field(default_factory=dict)
    device: str | None = None
    schema: int = SCHEMA_VERSION

    # ---- derived outcomes -----------------------------------------------------------------
    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def delta_id(self) -> float | None:
        """Fine-tuned minus zero-shot top-1 on the task's test split."""
        return None if self.finetuned is None else self.finetuned.id - self.zero_shot.id

    @property
    def delta_dg_per_domain(self) -> dict[str, float]:
        return {} if self.finetuned is None else _deltas(self.finetuned.dg, self.zero_shot.dg)

    @property
    def delta_dg(self) -> float | None:
        """Mean over shift domains of the gain (None without a domain)."""
        return mean_or_none(self.delta_dg_per_domain.values())

    @property
    def cf(self) -> dict[str, float]:
        """Per control task: fine-tuned minus zero-shot (negative = forgetting)."""
        if self.finetuned is None:
            return {}
        return _deltas(self.finetuned.control, self.zero_shot.control)

    @property
    def cf_mean(self) -> float | None:
        return mean_or_none(self.cf.values())

    # ---- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The record as the JSON object of ``docs/records.md`` (deltas included)."""
        data = {
            "schema": self.schema,
            "run_id": self.run_id,
            "status": self.status,
            "error": self.error,
            "task": self.task,
            "method": self.method,
            "seed": self.seed,
            "preset": self.preset,
            "model": self.model,
            "config": self.config,
            "shots": self.shots,
        }
        if not self.complete:
            return data
        data.update(
            difficulty=self.difficulty.to_dict(),
            zero_shot=self.zero_shot.to_dict(),
            finetuned=self.finetuned.to_dict(),
            delta_id=self.delta_id,
            delta_dg=self.delta_dg,
            delta_dg_per_domain=self.delta_dg_per_domain,
            cf=self.cf,
            cf_mean=self.cf_mean,
            interpolation=[p.to_dict() for p in self.interpolation],
        )
        for key in (
            "trainable_params",
            "best_epoch",
            "val_accuracy",
            "val_accuracy_start",
            "seconds",
            "eval_seconds",
            "peak_memory_mb",
            "versions",
            "device",
        ):
            data[key] = getattr(self, key)
        data["history"] = list(self.history)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    def comparable(self) -> dict:
        """The JSON object without the keys that measure the machine, at the top level and in
        each epoch of ``history`` (determinism checks)."""
        data = {k: v for k, v in self.to_dict().items() if k not in VOLATILE_KEYS}
        if "history" in data:
            data["history"] = [
                {k: v for k, v in epoch.items() if k not in VOLATILE_KEYS}
                for epoch in data["history"]
            ]
        return data

    def with_updates(self, **changes) -> RunRecord:
        return replace(self, **changes)

    @classmethod
    def from_json(cls, text: str, *, path: Path | str = "record.json") -> RunRecord:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: cannot read JSON ({exc})") from None
        return cls.from_dict(data, path=path)

    @classmethod
    def from_dict(cls, data: Any, *, path: Path | str = "record.json") -> RunRecord:
        """Validate a record's JSON object; errors name the file and the key."""
        from clipgap.record_check import parse_record

        return parse_record(cls, data, Checker(Path(path), data))


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
    return RunRecord.from_json(text, path=path)


def write_record(run_dir: str | Path, record: RunRecord) -> None:
    """Write ``record.json`` then the ``DONE`` marker, each atomically (marker last)."""
    from clipgap.paths import atomic_write_text

    run_dir = Path(run_dir)
    atomic_write_text(run_dir / RECORD_FILE, record.to_json())
    atomic_write_text(run_dir / DONE_MARKER, record.status + "\n")
