"""Load and validate the run records of a study: ``STUDY_DIR/runs/*/record.json``.

A run directory counts only once its ``DONE`` marker exists (the grid writes it last); others are
still running or were interrupted and are skipped. The schema is ``docs/records.md``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clipgap.errors import DataError
from clipgap.record import SCHEMA_VERSION

log = logging.getLogger(__name__)

SCHEMA = 1
STATUSES = ("complete", "failed")
DIFFICULTY_KEYS = (
    "silhouette_modality",
    "silhouette_class",
    "acs",
    "zero_shot_accuracy",
    "modality_gap",
)
# Tolerance when checking stored deltas against finetuned - zero_shot.
DELTA_TOL = 1e-6


@dataclass(frozen=True)
class RunRecord:
    """One finished run: its identity plus the validated record as read from disk."""

    path: Path
    run_id: str
    status: str
    task: str
    method: str
    seed: int
    preset: str
    model: str
    error: str | None
    data: dict[str, Any]

    @property
    def complete(self) -> bool:
        return self.status == "complete"


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

    Raises :class:`DataError` when the directory has no ``runs`` folder, when no run has finished,
    or when a finished run's record is missing or malformed (the message names file and key).
    """
    root = Path(study_dir)
    runs = root / "runs"
    if not runs.is_dir():
        raise DataError(f"{root} is not a study directory: {runs} does not exist")
    records, unfinished = [], []
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()):
        if not (run_dir / "DONE").exists():
            unfinished.append(run_dir.name)
            continue
        records.append(read_record(run_dir / "record.json"))
    if unfinished:
        log.info("skipping %d run directories without DONE", len(unfinished))
    if not records:
        raise DataError(f"no finished runs in {runs} (no run directory holds a DONE marker)")
    records.sort(key=lambda r: (r.task, r.method, r.seed, r.run_id))
    return Study(root=root, records=records, unfinished=unfinished)


def read_record(path: Path) -> RunRecord:
    """Parse and validate one ``record.json``."""
    if not path.is_file():
        raise DataError(f"{path} does not exist but its run directory holds DONE")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(data).__name__}")
    check = _Checker(path, data)
    if data.get("schema", SCHEMA) not in (SCHEMA, SCHEMA_VERSION):  # until the typed loader
        raise DataError(f"{path}: key 'schema' is {data['schema']!r}; expected {SCHEMA}")
    status = check.text("status")
    if status not in STATUSES:
        raise DataError(f"{path}: key 'status' is {status!r}; expected one of {STATUSES}")
    record = RunRecord(
        path=path,
        run_id=check.text("run_id"),
        status=status,
        task=check.text("task"),
        method=check.text("method"),
        seed=check.integer("seed"),
        preset=str(data.get("preset") or ""),
        model=check.text("model"),
        error=None if data.get("error") is None else str(data["error"]),
        data=data,
    )
    if record.complete:
        _validate_complete(check)
    return record


def _validate_complete(check: _Checker) -> None:
    diff = check.mapping("difficulty")
    for key in DIFFICULTY_KEYS:  # null or NaN = undefined for this task (e.g. one class)
        check.number(key, within=diff, where="difficulty", undefined_ok=True)
    zs, ft = check.mapping("zero_shot"), check.mapping("finetuned")
    for name, block in (("zero_shot", zs), ("finetuned", ft)):
        check.number("id", within=block, where=name, lo=0.0, hi=1.0)
        for part in ("dg", "control"):
            scores = check.mapping(part, within=block, where=name, default={})
            for key in scores:
                check.number(key, within=scores, where=f"{name}.{part}", lo=0.0, hi=1.0)
    check.consistent("delta_id", ft["id"] - zs["id"])
    per_domain = _differences(check, "delta_dg_per_domain", ft.get("dg", {}), zs.get("dg", {}))
    cf = _differences(check, "cf", ft.get("control", {}), zs.get("control", {}))
    check.consistent("delta_dg", _mean(per_domain.values()), nullable=True)
    check.consistent("cf_mean", _mean(cf.values()), nullable=True)
    for key in ("trainable_params", "best_epoch"):
        check.integer(key, optional=True)
    for key in ("val_accuracy", "seconds", "eval_seconds", "peak_memory_mb"):
        check.number(key, optional=True, lo=0.0)


def _differences(check: _Checker, key: str, ft: dict, zs: dict) -> dict[str, float]:
    """Validate a per-domain/per-control delta mapping against finetuned - zero_shot."""
    values = check.mapping(key, default={})
    expected = {k: ft[k] - zs[k] for k in ft if k in zs}
    if set(values) != set(expected):
        raise DataError(
            f"{check.path}: key {key!r} has entries {sorted(values)}; expected those scored "
            f"before and after fine-tuning: {sorted(expected)}"
        )
    for name in values:
        check.number(name, within=values, where=key)
        if abs(values[name] - expected[name]) > DELTA_TOL:
            raise DataError(
                f"{check.path}: {key}[{name!r}] is {values[name]!r}; expected finetuned - "
                f"zero_shot = {expected[name]!r}"
            )
    return values


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


class _Checker:
    """Type checks that name the file and key in their error message."""

    def __init__(self, path: Path, data: dict) -> None:
        self.path, self.data = path, data

    def _get(self, key: str, within: dict | None, where: str | None, optional: bool):
        source = self.data if within is None else within
        label = f"{where}.{key}" if where else key
        if key not in source:
            if optional:
                return label, None
            raise DataError(f"{self.path}: key {label!r} is missing")
        return label, source[key]

    def text(self, key: str) -> str:
        label, value = self._get(key, None, None, False)
        if not isinstance(value, str) or not value:
            raise DataError(f"{self.path}: key {label!r} is {value!r}; expected a non-empty string")
        return value

    def integer(self, key: str, *, optional: bool = False) -> int | None:
        label, value = self._get(key, None, None, optional)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"{self.path}: key {label!r} is {value!r}; expected an integer")
        return value

    def number(
        self,
        key,
        *,
        within=None,
        where=None,
        optional=False,
        undefined_ok=False,
        lo=-math.inf,
        hi=math.inf,
    ):
        """A finite number in [lo, hi]; ``optional``: may be absent or null; ``undefined_ok``:
        must be present but may be null or NaN."""
        label, value = self._get(key, within, where, optional)
        if value is None and (optional or undefined_ok):
            return None
        if undefined_ok and isinstance(value, float) and math.isnan(value):
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not lo <= value <= hi:
            span = "" if (lo, hi) == (-math.inf, math.inf) else f" in [{lo:g}, {hi:g}]"
            raise DataError(
                f"{self.path}: key {label!r} is {value!r}; expected a finite number{span}"
            )
        return float(value)

    def mapping(self, key: str, *, within=None, where=None, default=None) -> dict:
        label, value = self._get(key, within, where, default is not None)
        if value is None and default is not None:
            return default
        if not isinstance(value, dict):
            raise DataError(f"{self.path}: key {label!r} is {value!r}; expected a JSON object")
        return value

    def consistent(self, key: str, expected: float | None, *, nullable: bool = False) -> None:
        """``key`` must be a number equal to ``expected`` (or null when ``expected`` is None)."""
        label, value = self._get(key, None, None, nullable)
        if expected is None and nullable:
            if value is not None:
                raise DataError(f"{self.path}: key {label!r} is {value!r}; expected null")
            return
        self.number(key)
        if abs(value - expected) > DELTA_TOL:
            raise DataError(
                f"{self.path}: key {label!r} is {value!r}; expected {expected!r} "
                "(finetuned - zero_shot)"
            )
