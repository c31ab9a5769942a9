"""Which difficulty measure predicts which outcome on this study (issue: inform the choice).

A thin layer over :func:`clipgap.predict.compare_measures`: one comparison per preset of the
study's complete full-data runs (``shots`` = all), or the one-line reason there is none (the
records mix models, or have no full-data run).
"""

from __future__ import annotations

from dataclasses import dataclass

from clipgap.errors import DataError
from clipgap.predict import MeasureComparison, compare_measures
from clipgap.predict.honest import NestedOptions
from clipgap.report.study import Study


@dataclass(frozen=True)
class MeasureRanking:
    """The measure comparison of one preset (``comparison``), or ``why`` there is none."""

    preset: str
    comparison: MeasureComparison | None = None
    why: str = ""


def measure_rankings(study: Study, *, level: float = 0.05) -> list[MeasureRanking]:
    """One :class:`MeasureRanking` per preset of the complete full-data runs, by preset name;
    a single entry with ``why`` set when the records cannot be compared at all. ``level``:
    significance level of the nested procedure's "beats the baseline"."""
    full = [r for r in study.complete if r.shots is None]
    if not full:
        return [MeasureRanking("", why="no complete run on all training images (shots = all)")]
    out = []
    for preset in sorted({r.preset for r in full}):
        try:
            comparison = compare_measures(full, preset=preset, options=NestedOptions(level=level))
            out.append(MeasureRanking(preset, comparison))
        except DataError as exc:
            out.append(MeasureRanking(preset, why=str(exc)))
    return out
