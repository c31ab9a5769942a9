"""Names the report shows and how arms are spelled.

An *arm* is what one column of results is about: a method, suffixed by ``/preset`` when the
study has several presets and by ``@k`` (training images per class, ``all`` = the full split)
when it has several ``shots`` values: ``lora``, ``lora/paper``, ``lora/paper@16``. Only the
paper's five methods run on all training images enter claims; every other arm (the linear
probe, limited-data runs) is shown with a ``†``.
"""

from __future__ import annotations

from collections.abc import Iterable

from clipgap.record import OUTCOMES as OUTCOMES  # the report's outcomes: the record's
from clipgap.record import PAPER_METHODS

METHOD_ORDER = (*PAPER_METHODS, "linear_probe")
METHOD_NAMES = {
    "full": "full",
    "aclip": "A-CLIP",
    "bitfit": "BitFit",
    "lora": "LoRA",
    "clip_adapter": "CLIP-Adapter",
    "linear_probe": "linear probe",
}
# The outcomes' display labels are the record's (one definition).
MEASURES = ("silhouette_modality", "acs", "zero_shot_accuracy")
MEASURE_NAMES = {
    "silhouette_modality": "ss (modality)",
    "silhouette_class": "ss (class)",
    "acs": "ACS",
    "zero_shot_accuracy": "zero-shot acc",
    "modality_gap": "modality gap",
}
ALL_SHOTS = "all"
EXTRA_MARK = " †"


def shots_text(shots: int | None) -> str:
    """``"16"`` for 16 training images per class, ``"all"`` for the full split."""
    return ALL_SHOTS if shots is None else str(shots)


def shots_key(shots: str) -> tuple[int, int]:
    """Sort key: numbers ascending, ``all`` last."""
    return (1, 0) if shots == ALL_SHOTS else (0, int(shots))


def split_arm(arm: str) -> tuple[str, str, str]:
    """``(method, preset, shots)`` of an arm; preset and shots are ``""`` when not spelled."""
    base, _, shots = arm.partition("@")
    method, _, preset = base.partition("/")
    return method, preset, shots


def in_claims(arm: str) -> bool:
    """Whether an arm can enter a claim: a paper method run on all training images."""
    method, _, shots = split_arm(arm)
    return method in PAPER_METHODS and shots in ("", ALL_SHOTS)


def method_label(arm: str, *, mark: bool = False) -> str:
    """Display name of an arm (``aclip`` -> ``A-CLIP``, ``aclip/paper@16`` ->
    ``A-CLIP/paper (k=16)``); with ``mark``, arms outside the claims end in ``†``."""
    method, preset, shots = split_arm(arm)
    label = METHOD_NAMES.get(method, method)
    label = f"{label}/{preset}" if preset else label
    label = f"{label} (k={shots})" if shots else label
    return label + EXTRA_MARK if mark and not in_claims(arm) else label


def order_arms(arms: Iterable[str]) -> list[str]:
    """Paper methods first in the paper's order, then the linear probe, then others by name;
    within a method by preset, then by shots (``all`` last)."""

    def key(arm: str):
        method, preset, shots = split_arm(arm)
        rank = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
        return (rank, method, preset, shots_key(shots) if shots else (2, 0))

    return sorted(set(arms), key=key)
