"""The report's numbers as plain JSON-ready data (``clipgap report DIR --json``): per preset and
outcome, the nested measure ranking's verdict, and each claim's status."""

from __future__ import annotations

from clipgap.predict.honest import NestedQuality
from clipgap.record import OUTCOME_LABELS


def ranking_numbers(rankings) -> dict[str, dict]:
    """preset -> {outcome label: {best, nested_mae, baseline_mae, p_value, beats_baseline, ...}}
    (or {"why": reason} for a preset or outcome with no nested ranking)."""
    out: dict[str, dict] = {}
    for ranking in rankings:
        if ranking.comparison is None:
            out[ranking.preset] = {"why": ranking.why}
            continue
        mine = {}
        for outcome, q in ranking.comparison.nested.items():
            label = OUTCOME_LABELS[outcome]
            if isinstance(q, NestedQuality):
                mine[label] = {
                    "best": q.best,
                    "nested_mae": q.nested_mae,
                    "baseline_mae": q.baseline_mae,
                    "baseline": q.baseline,
                    "baselines": dict(q.baselines),
                    "p_value": q.p_value,
                    "permutations": q.permutations,
                    "beats_baseline": q.beats_baseline,
                    "coverage": dict(q.coverage),
                    "n_tasks": q.n_tasks,
                }
            else:
                mine[label] = {"why": q}
        out[ranking.preset] = mine
    return out


def report_numbers(analysis, path) -> dict:
    """What ``clipgap report --json`` writes: ``measure_ranking`` of the study's only preset (or
    of its first, with every preset under ``measure_ranking_by_preset``), and the claims; for a
    study over several models (``analysis`` a dict by model), that per model under ``models``."""
    if isinstance(analysis, dict):
        return {
            "report": str(path),
            "models": {m: report_numbers(a, path) for m, a in analysis.items()},
        }
    by_preset = ranking_numbers(analysis.measures)
    first = next(iter(by_preset.values()), {})
    return {
        "report": str(path),
        "measure_ranking": first,
        "measure_ranking_by_preset": by_preset,
        "claims": [
            {"key": c.key, "statement": c.statement, "status": str(c.status.value)}
            for c in analysis.claims
        ],
    }
