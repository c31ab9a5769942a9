"""Expanding a study config into runs: models x tasks x methods x shots x seeds, each a
:class:`~clipgap.study.spec.RunSpec` built by :func:`~clipgap.study.spec.resolve_run`.

Each method is looked up once for the whole study, with its options; the difficulty of every
task is measured where the study says (its split, the study-wide validation hold-out).
"""

from __future__ import annotations

from clipgap.study.config import StudyConfig
from clipgap.study.spec import Columns, RunSpec, resolve_run

__all__ = ["RunSpec", "plan_runs", "study_holdout"]


def study_holdout(cfg: StudyConfig):
    """The validation hold-out of the study-wide ``train`` settings (per-method overrides in
    ``method_train`` change a run's hold-out, not where its task's difficulty is measured)."""
    from clipgap.config import from_dict
    from clipgap.training import TrainConfig

    keys = ("val_fraction", "val_max", "val_seed")
    return from_dict(TrainConfig, {k: v for k, v in cfg.train.items() if k in keys}).holdout


def plan_runs(cfg: StudyConfig) -> list[RunSpec]:
    """Every (model, task, method, shots, seed) run of the study, in a stable order (the
    models axis outermost).

    Validated here, so a bad method name, method option or train setting fails (one line
    naming the key) before anything runs.
    """
    from clipgap.methods import resolve_method

    holdout = study_holdout(cfg)
    chosen = {m: resolve_method(m, cfg.method_options.get(m, {})) for m in cfg.methods}
    columns = Columns(cfg.data.image_column, cfg.data.label_column)
    return [
        resolve_run(
            entry.name,
            chosen[method],
            preset=cfg.preset,
            model=model,
            pretrained=cfg.pretrained,
            device=cfg.device,
            train={**cfg.train, **cfg.method_train.get(method, {}), "seed": seed, "shots": shots},
            where=f"method_train.{method}" if method in cfg.method_train else "train",
            eval=cfg.eval,
            difficulty_split=cfg.difficulty.split,
            difficulty_holdout=holdout,
            dg=tuple(entry.dg),
            controls=tuple(cfg.controls_for(entry)),
            columns=columns,
        )
        for model in cfg.model_names
        for entry in cfg.tasks
        for method in cfg.methods
        for shots in cfg.shots
        for seed in cfg.seeds
    ]
