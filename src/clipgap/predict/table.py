"""A study's records as one table: per (method, task) seed means of each outcome
(:data:`clipgap.record.PREDICTED_OUTCOMES`), and each task's difficulty, for one model, one
preset and full-data runs (``shots`` None) only.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clipgap.errors import ConfigError, DataError, UnknownNameError, suggest
from clipgap.record import (
    DIFFICULTY_KEYS,
    PAPER_METHODS,
    PREDICTED_OUTCOMES,
    RUNS_DIR,
    Difficulty,
    RunRecord,
    read_records,
)

log = logging.getLogger(__name__)

# The five paper methods averaged per task, as one more arm of the measure comparison.
POOLED = "paper methods (pooled)"


def read_study(study_dir: str | Path) -> list[RunRecord]:
    """The complete records of a study directory (:func:`clipgap.record.read_records`; runs
    without ``DONE``, failed runs and corrupt records, with one warning naming them, are left
    out). Raises :class:`DataError` when there is none."""
    root = Path(study_dir)
    if not root.is_dir():
        raise ConfigError(f"study directory {root} does not exist")
    study = read_records(root)
    if study.corrupt:
        log.warning("%s", study.corrupt_line())
    complete = study.complete
    if not complete:
        runs = root / RUNS_DIR
        total = len(study.finished) + len(study.corrupt) + len(study.unfinished)
        raise DataError(
            f"{runs} has no complete run records ({total} run directories, "
            f"{len(study.finished)} finished); run the study first"
        )
    return complete


@dataclass(frozen=True)
class StudyTable:
    """Seed means per (method, task) of every outcome, and each task's difficulty.

    ``values[(method, task, outcome)]`` is absent where the outcome is undefined for that task.
    ``place`` says which images the difficulty was measured on (see :func:`difficulty_place`).
    """

    model: str
    pretrained: str | None
    preset: str
    split: str
    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    difficulty: dict[str, Difficulty]
    values: dict[tuple[str, str, str], float]
    seeds: dict[tuple[str, str], int]
    place: dict = field(default_factory=dict)

    def tasks_of(self, method: str) -> tuple[str, ...]:
        return tuple(t for t in self.tasks if (method, t) in self.seeds)

    def common_tasks(self) -> tuple[str, ...]:
        """Tasks that every method of the table ran on."""
        return tuple(t for t in self.tasks if all((m, t) in self.seeds for m in self.methods))

    def outcome(self, arm: str, outcome: str, tasks) -> np.ndarray | None:
        """The outcome of ``arm`` (a method or :data:`POOLED`) on ``tasks``, or None if it is
        undefined on one of them."""
        out = []
        for task in tasks:
            if arm == POOLED:
                value = self._pooled(task, outcome)
            else:
                value = self.values.get((arm, task, outcome))
            if value is None:
                return None
            out.append(value)
        return np.asarray(out, dtype=np.float64)

    def _pooled(self, task: str, outcome: str) -> float | None:
        paper = [m for m in self.methods if m in PAPER_METHODS]
        vals = [self.values.get((m, task, outcome)) for m in paper]
        if not paper or any(v is None for v in vals):
            return None
        return float(np.mean(vals))

    def pooled_tasks(self) -> tuple[str, ...]:
        paper = [m for m in self.methods if m in PAPER_METHODS]
        if not paper:
            return ()
        return tuple(t for t in self.tasks if all((m, t) in self.seeds for m in paper))

    def measure(self, measure: str, tasks) -> np.ndarray | None:
        """The measure's value on each of ``tasks``, or None when it is undefined on one."""
        vals = [self.difficulty[t].value(measure) for t in tasks]
        if any(v is None for v in vals):
            return None
        return np.asarray(vals, dtype=np.float64)

    def missing_measure(self, measure: str, tasks) -> list[str]:
        """The tasks on which ``measure`` is None."""
        return [t for t in tasks if self.difficulty[t].value(measure) is None]


HOLDOUT_KEYS = ("val_fraction", "val_max", "val_seed")


def difficulty_place(record: RunRecord) -> dict:
    """Which images the record's difficulty was measured on: the study's ``config["difficulty"]``
    when it wrote one (``{"split": "train", "val_fraction", "val_max", "val_seed"}``: the train
    split minus the trainer's validation hold-out; or ``{"split": "test"}``), otherwise the same
    built from the run's ``train`` config. A test split also carries the study's test cap."""
    place = record.config.get("difficulty")
    split = record.difficulty.split
    if not isinstance(place, dict) or place.get("split") != split:
        train = record.config.get("train") or {}
        place = {"split": split, **{k: train[k] for k in HOLDOUT_KEYS if k in train}}
    place = dict(place)
    if split == "test":
        place = {"split": "test", "max_test_images": (record.config.get("eval") or {}).get(
            "max_test_images"
        )}  # fmt: skip
    return place


def _common_place(records: list[RunRecord]) -> dict:
    counts = Counter(json.dumps(difficulty_place(r), sort_keys=True) for r in records)
    if len(counts) > 1:
        log.warning("the records measured difficulty on different images: %s", sorted(counts))
    return json.loads(counts.most_common(1)[0][0])


def check_measure(name: str) -> str:
    if name not in DIFFICULTY_KEYS:
        raise UnknownNameError(
            f"unknown measure {name!r}{suggest(name, DIFFICULTY_KEYS)}; "
            f"choose from {', '.join(DIFFICULTY_KEYS)}"
        )
    return name


def _one(values: set, what: str, choose: str = "") -> str:
    if len(values) != 1:
        shown = ", ".join(sorted(map(str, values)))
        raise DataError(f"the records mix {what} ({shown}){choose}")
    return next(iter(values))


def study_table(records: list[RunRecord], *, preset: str | None = None) -> StudyTable:
    """Build the table from complete records of one model; ``preset`` selects one preset (needed
    when the records hold several). Runs with ``shots`` set (few-shot) are left out."""
    full = [r for r in records if r.complete and r.shots is None]
    if not full:
        raise DataError("no complete full-data records (shots = all) to learn from")
    presets = sorted({r.preset for r in full})
    if preset is None:
        preset = _one(set(presets), "presets", "; choose one with --preset")
    elif preset not in presets:
        raise UnknownNameError(f"no records of preset {preset!r}; the study has {presets}")
    chosen = sorted((r for r in full if r.preset == preset), key=lambda r: r.run_id)
    model = _one({r.model for r in chosen}, "models; predictions are per model")
    pretrained = {str(r.config.get("pretrained")) for r in chosen}
    _one(pretrained, "pretrained weights; predictions are per model")
    split = _one({r.difficulty.split for r in chosen}, "difficulty splits")
    sums: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    seeds: dict[tuple[str, str], int] = defaultdict(int)
    difficulty: dict[str, Difficulty] = {}
    for r in chosen:
        difficulty.setdefault(r.task, r.difficulty)
        seeds[(r.method, r.task)] += 1
        for outcome in PREDICTED_OUTCOMES:
            value = r.outcomes.value(outcome)
            if value is not None:
                sums[(r.method, r.task, outcome)].append(value)
    values = {}
    for key, vals in sums.items():
        # a seed mean only where every seed has the outcome
        if len(vals) == seeds[key[:2]]:
            values[key] = float(np.mean(vals))
    return StudyTable(
        model=model,
        pretrained=chosen[0].config.get("pretrained"),
        preset=preset,
        split=split,
        tasks=tuple(sorted(difficulty)),
        methods=_method_order({r.method for r in chosen}),
        difficulty=difficulty,
        values=values,
        seeds=dict(seeds),
        place=_common_place(chosen),
    )


def _method_order(methods: set[str]) -> tuple[str, ...]:
    paper = [m for m in PAPER_METHODS if m in methods]
    return tuple(paper + sorted(methods - set(paper)))
