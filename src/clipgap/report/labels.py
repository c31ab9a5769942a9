"""Names the report shows: methods, outcomes, difficulty measures, and the order of methods."""

from __future__ import annotations

from collections.abc import Iterable

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
OUTCOMES = ("delta_id", "delta_dg", "cf_mean")
OUTCOME_NAMES = {"delta_id": "dID", "delta_dg": "dDG", "cf_mean": "CF"}
MEASURES = ("silhouette_modality", "acs", "zero_shot_accuracy")
MEASURE_NAMES = {
    "silhouette_modality": "ss (modality)",
    "silhouette_class": "ss (class)",
    "acs": "ACS",
    "zero_shot_accuracy": "zero-shot acc",
    "modality_gap": "modality gap",
}


def method_label(arm: str) -> str:
    """Display name of an arm (``aclip`` -> ``A-CLIP``, ``aclip/paper`` -> ``A-CLIP/paper``)."""
    method, _, preset = arm.partition("/")
    name = METHOD_NAMES.get(method, method)
    return f"{name}/{preset}" if preset else name


def order_arms(arms: Iterable[str]) -> list[str]:
    """Paper methods first in the paper's order, then the linear probe, then others by name."""

    def key(arm: str):
        method, _, preset = arm.partition("/")
        rank = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
        return (rank, method, preset)

    return sorted(set(arms), key=key)
