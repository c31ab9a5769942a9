"""Expanding a study config into runs: models x tasks x methods x shots x seeds (x trials, with
a ``search:``), each a :class:`~clipgap.study.spec.RunSpec` built by
:func:`~clipgap.study.spec.resolve_run`.

Each method is looked up once for the whole study, with its options; a search draws each
method's trials once, from that resolved method (:func:`clipgap.study.search.plan_trials`).
The difficulty of every task is measured where the study says (its split, the study-wide
validation hold-out).
"""

from __future__ import annotations

from clipgap.errors import ConfigError
from clipgap.study.config import StudyConfig
from clipgap.study.search import Trial
from clipgap.study.spec import Columns, RunSpec, resolve_run

__all__ = ["RunSpec", "plan_runs", "study_holdout"]


def study_holdout(cfg: StudyConfig):
    """The validation hold-out of the study-wide ``train`` settings (per-method overrides in
    ``method_train`` change a run's hold-out, not where its task's difficulty is measured)."""
    from clipgap.config import from_dict
    from clipgap.training import TrainConfig

    keys = ("val_fraction", "val_max", "val_seed")
    return from_dict(TrainConfig, {k: v for k, v in cfg.train.items() if k in keys}).holdout


def study_trials(cfg: StudyConfig, chosen: dict) -> dict[str, list[Trial | None]]:
    """Per method, the trials its runs take: ``[None]`` without a search, else the search's
    trials drawn from the resolved method's space (the study's, else the preset's)."""
    if cfg.search is None:
        return {m: [None] for m in cfg.methods}
    from clipgap.study.search import plan_trials
    from clipgap.training import search_space

    defaults = {m: search_space(cfg.preset, m, model=cfg.model) for m in cfg.methods}
    return plan_trials(cfg.search, [chosen[m] for m in cfg.methods], defaults)


def plan_runs(cfg: StudyConfig) -> list[RunSpec]:
    """Every (model, task, method, shots, seed, trial) run of the study, in a stable order (the
    models axis outermost, trials innermost, so ``--shard`` I/N partitions a search like any
    grid).

    Validated here, so a bad method name, method option or train setting fails (one line
    naming the key) before anything runs.
    """
    from clipgap.methods import resolve_method

    holdout = study_holdout(cfg)
    chosen = {m: resolve_method(m, cfg.method_options.get(m, {})) for m in cfg.methods}
    trials = study_trials(cfg, chosen)
    columns = Columns(cfg.data.image_column, cfg.data.label_column)
    runs = [
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
            trial=trial,
        )
        for model in cfg.model_names
        for entry in cfg.tasks
        for method in cfg.methods
        for shots in cfg.shots
        for seed in cfg.seeds
        for trial in trials[method]
    ]
    if cfg.search is not None:
        _check_search_holdout(runs)
    return runs


def _check_search_holdout(runs: list[RunSpec]) -> None:
    """A search chooses its trial on validation accuracy: every run needs a hold-out."""
    for run in runs:
        if run.train.holdout.val_fraction <= 0:
            raise ConfigError(
                f"search: trials are chosen on validation accuracy, but method {run.method} "
                "trains without a hold-out (train.val_fraction 0); set train.val_fraction > 0"
            )
