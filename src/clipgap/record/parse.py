"""Parsing and validating a run record's JSON object into a :class:`~clipgap.record.run.RunRecord`.

Every error names the file and the key and says what was expected, in one line. The stored
outcomes are checked against the ones derived from the accuracies.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from clipgap.errors import DataError
from clipgap.record.run import (
    OUTCOME_JSON_KEYS,
    SCHEMA_VERSION,
    STATUSES,
    RecordSchemaError,
    RunRecord,
)
from clipgap.record.values import (
    DIFFICULTY_KEYS,
    DIFFICULTY_SPLITS,
    AlphaPoint,
    Difficulty,
    Scores,
)

# Tolerance when checking stored outcomes against finetuned - zero_shot.
DELTA_TOL = 1e-6


class Checker:
    """Type checks that name the file and key in their error message."""

    def __init__(self, path: Path, data: Any) -> None:
        self.path, self.data = path, data

    def fail(self, label: str, value, expected: str):
        raise DataError(f"{self.path}: key {label!r} is {value!r:.80}; expected {expected}")

    def get(
        self, key: str, within: dict | None = None, where: str | None = None, *, optional=False
    ):
        source = self.data if within is None else within
        label = f"{where}.{key}" if where else key
        if key not in source:
            if optional:
                return label, None
            raise DataError(f"{self.path}: key {label!r} is missing")
        return label, source[key]

    def text(self, key: str, *, optional: bool = False) -> str | None:
        label, value = self.get(key, optional=optional)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            self.fail(label, value, "a non-empty string")
        return value

    def integer(self, key: str, *, within=None, where=None, optional=False) -> int | None:
        label, value = self.get(key, within, where, optional=optional)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(label, value, "an integer")
        return value

    def number(self, key, *, within=None, where=None, optional=False, lo=-math.inf, hi=math.inf):
        """A finite number in [lo, hi]; ``optional``: may be absent or null (NaN reads as null)."""
        label, value = self.get(key, within, where, optional=optional)
        if optional and (value is None or (isinstance(value, float) and math.isnan(value))):
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not lo <= value <= hi:
            span = "" if (lo, hi) == (-math.inf, math.inf) else f" in [{lo:g}, {hi:g}]"
            self.fail(label, value, f"a finite number{span}")
        return float(value)

    def mapping(self, key: str, *, within=None, where=None, optional=False) -> dict:
        label, value = self.get(key, within, where, optional=optional)
        if value is None and optional:
            return {}
        if not isinstance(value, dict):
            self.fail(label, value, "a JSON object")
        return value

    def sequence(self, key: str, *, optional: bool = False) -> list:
        label, value = self.get(key, optional=optional)
        if value is None and optional:
            return []
        if not isinstance(value, list):
            self.fail(label, value, "a JSON list")
        return value

    def consistent(self, key: str, expected: float | None) -> None:
        """Stored ``key`` equals the value derived from the accuracies (null when undefined)."""
        label, value = self.get(key, optional=True)
        if expected is None:
            if value is not None:
                self.fail(label, value, "null (nothing to average)")
            return
        self.number(key)
        if abs(value - expected) > DELTA_TOL:
            self.fail(label, value, f"{expected!r} (derived from finetuned - zero_shot)")


def _scores(check: Checker, key: str, *, within=None) -> Scores:
    block = check.mapping(key, within=within)
    acc = check.number("id", within=block, where=key, lo=0.0, hi=1.0)
    parts = {}
    for part in ("dg", "control"):
        values = check.mapping(part, within=block, where=key, optional=True)
        parts[part] = {
            k: check.number(k, within=values, where=f"{key}.{part}", lo=0.0, hi=1.0) for k in values
        }
    return Scores(id=acc, dg=parts["dg"], control=parts["control"])


def _difficulty(check: Checker) -> Difficulty:
    block = check.mapping("difficulty")
    split = block.get("split")
    if split not in DIFFICULTY_SPLITS:
        check.fail("difficulty.split", split, f"one of {', '.join(DIFFICULTY_SPLITS)}")
    values = {
        k: check.number(k, within=block, where="difficulty", optional=True) for k in DIFFICULTY_KEYS
    }
    counts = {
        k: check.integer(k, within=block, where="difficulty") for k in ("n_images", "n_classes")
    }
    return Difficulty(split=split, **counts, **values)


def _interpolation(check: Checker) -> tuple[AlphaPoint, ...]:
    points = []
    for i, item in enumerate(check.sequence("interpolation", optional=True)):
        where = f"interpolation[{i}]"
        if not isinstance(item, dict):
            check.fail(where, item, "a JSON object")
        alpha = check.number("alpha", within=item, where=where, lo=0.0, hi=1.0)
        val = check.number("val_accuracy", within=item, where=where, optional=True, lo=0.0, hi=1.0)
        sub = Checker(check.path, {where: item})
        points.append(AlphaPoint(alpha=alpha, scores=_scores(sub, where), val_accuracy=val))
    return tuple(points)


def _check_schema(check: Checker, data: Any) -> None:
    if not isinstance(data, dict):
        raise DataError(f"{check.path}: expected a JSON object, got {type(data).__name__}")
    schema = data.get("schema")
    if schema != SCHEMA_VERSION:
        raise RecordSchemaError(
            f"{check.path}: record schema {schema!r}, but this clipgap reads schema "
            f"{SCHEMA_VERSION} (best trained epoch, difficulty on the train split): re-run the "
            f"study into a new --out directory; old records are never mixed with new ones"
        )


def parse_record(data: Any, *, path: Path | str = "record.json") -> RunRecord:
    """Build a :class:`RunRecord` from its JSON object, validating every key.

    Raises :class:`DataError` (naming ``path`` and the key) for a malformed record and
    :class:`RecordSchemaError` for one written under another schema version.
    """
    check = Checker(Path(path), data)
    _check_schema(check, data)
    status = check.text("status")
    if status not in STATUSES:
        check.fail("status", status, f"one of {STATUSES}")
    ident = dict(
        run_id=check.text("run_id"),
        status=status,
        task=check.text("task"),
        method=check.text("method"),
        seed=check.integer("seed"),
        preset=str(data.get("preset") or ""),
        model=check.text("model"),
        config=check.mapping("config"),
        error=None if data.get("error") is None else str(data["error"]),
        shots=check.integer("shots", optional=True),
    )
    if status != "complete":
        return RunRecord(**ident)
    record = RunRecord(
        **ident,
        difficulty=_difficulty(check),
        zero_shot=_scores(check, "zero_shot"),
        finetuned=_scores(check, "finetuned"),
        trainable_params=check.integer("trainable_params", optional=True),
        best_epoch=check.integer("best_epoch", optional=True),
        val_accuracy=check.number("val_accuracy", optional=True, lo=0.0, hi=1.0),
        val_accuracy_start=check.number("val_accuracy_start", optional=True, lo=0.0, hi=1.0),
        history=tuple(check.sequence("history", optional=True)),
        interpolation=_interpolation(check),
        seconds=check.number("seconds", optional=True, lo=0.0),
        eval_seconds=check.number("eval_seconds", optional=True, lo=0.0),
        peak_memory_mb=check.number("peak_memory_mb", optional=True, lo=0.0),
        versions=check.mapping("versions", optional=True),
        device=None if data.get("device") is None else str(data["device"]),
    )
    _check_outcomes(check, record)
    return record


def parse_record_json(text: str, *, path: Path | str = "record.json") -> RunRecord:
    """:func:`parse_record` of a JSON text (unreadable JSON is a :class:`DataError`)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: cannot read JSON ({exc})") from None
    return parse_record(data, path=path)


def _check_outcomes(check: Checker, record: RunRecord) -> None:
    """The stored outcomes (under their schema 2 JSON keys) match the derived ones."""
    derived = record.outcomes
    for name in ("delta_id", "delta_dg", "cf"):
        check.consistent(OUTCOME_JSON_KEYS[name], getattr(derived, name))
    for name in ("delta_dg_per_domain", "cf_per_control"):
        key, values = OUTCOME_JSON_KEYS[name], getattr(derived, name)
        stored = check.mapping(key, optional=True)
        if set(stored) != set(values):
            check.fail(key, sorted(stored), f"entries scored before and after: {sorted(values)}")
        for entry, value in stored.items():
            check.number(entry, within=stored, where=key)
            if abs(value - values[entry]) > DELTA_TOL:
                check.fail(f"{key}[{entry!r}]", value, f"{values[entry]!r} (finetuned - zero_shot)")
