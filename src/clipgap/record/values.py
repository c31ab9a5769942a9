"""What a run record holds besides its identity: the task's difficulty under the original model,
scores (top-1 accuracies) of one model, and one point along the interpolation weight alpha; and
the names these are spelled with (difficulty keys and splits, the paper's methods)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from clipgap.errors import DataError

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

    def within(self, other: Scores) -> Scores:
        """These scores on the domains and control tasks ``other`` was scored on too."""
        return Scores(
            id=self.id,
            dg={k: v for k, v in self.dg.items() if k in other.dg},
            control={k: v for k, v in self.control.items() if k in other.control},
        )


@dataclass(frozen=True)
class AlphaPoint:
    """Scores of the model interpolated at ``alpha`` (0 = zero-shot, 1 = fine-tuned) between
    the original and the fine-tuned weights, and its validation accuracy (for choosing alpha)."""

    alpha: float
    scores: Scores
    val_accuracy: float | None = None

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "val_accuracy": self.val_accuracy, **self.scores.to_dict()}
