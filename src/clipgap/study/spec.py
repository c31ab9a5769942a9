"""One run, fully resolved and typed: :class:`RunSpec`, built by :func:`resolve_run` alone.

``clipgap finetune`` resolves its one run from its arguments, a study (:func:`clipgap.study.plan_runs`)
each run of its grid; both call :func:`resolve_run`, which merges the preset with the overrides,
validates the result as a :class:`~clipgap.training.TrainConfig` on the run's device, and takes
the method already looked up (:func:`clipgap.methods.resolve_method`). No field of a run spec is
a dict: the runner, the trainer and interpolation read the typed values as they are.

A run is named by the hash of :meth:`RunSpec.config`, the dict its record stores under
``config``; which settings enter it is declared on the fields of the typed values (see
:func:`clipgap.config.identity`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from clipgap.config import INLINE, NEW_SETTING, digest, from_dict, identity
from clipgap.errors import ConfigError
from clipgap.methods import ResolvedMethod
from clipgap.record import DIFFICULTY_SPLITS
from clipgap.study.config import EvalConfig, shots_label
from clipgap.study.search import Trial
from clipgap.training.config import Holdout, TrainConfig

__all__ = ["Columns", "DifficultySpec", "RunSpec", "resolve_run"]


@dataclass(frozen=True)
class Columns:
    """The ``hfds:`` image / label columns a study names (``data.image_column`` /
    ``data.label_column``); each enters a run's config, and so its hash, only when set."""

    image_column: str | None = field(default=None, metadata=NEW_SETTING)
    label_column: str | None = field(default=None, metadata=NEW_SETTING)


@dataclass(frozen=True)
class DifficultySpec:
    """Where a task's difficulty is measured: ``split`` ``test``, or ``train`` = the training
    portion a trainer with ``holdout`` leaves (its entries enter the run config beside
    ``split``)."""

    split: str = "train"
    holdout: Holdout | None = field(default=None, metadata=INLINE)

    def __post_init__(self) -> None:
        if self.split not in DIFFICULTY_SPLITS:
            raise ValueError(f"difficulty split must be one of {DIFFICULTY_SPLITS}")
        if (self.split == "test") != (self.holdout is None):
            raise ValueError("a hold-out goes with the train split, and only with it")

    @classmethod
    def on(cls, split: str, holdout: Holdout) -> DifficultySpec:
        """``split``, with ``holdout`` when it is the training portion."""
        return cls("test") if split == "test" else cls(split, holdout)


@dataclass(frozen=True)
class RunSpec:
    """One fine-tuning run, fully resolved.

    ``resolved``: the method looked up once, with its options dataclass (``method`` is its
    name). ``train``: the resolved
    :class:`~clipgap.training.TrainConfig` (preset, overrides, seed and shots) on ``device``,
    the device being where a run executes, not what it computes (it enters no hash). ``eval``:
    test batch size, test-image cap and the interpolation weights ``alphas``. ``difficulty``:
    where the task's difficulty is measured. ``dg`` / ``controls``: shift domains and control
    tasks (none outside a study). ``columns``: the ``hfds:`` columns the study names.
    """

    task: str
    resolved: ResolvedMethod = field(hash=False)
    preset: str
    model: str
    pretrained: str | None
    device: str
    train: TrainConfig = field(hash=False)
    eval: EvalConfig
    difficulty: DifficultySpec
    dg: tuple[str, ...] = ()
    controls: tuple[str, ...] = ()
    columns: Columns = Columns()
    trial: Trial | None = field(default=None, hash=False)

    @property
    def method(self) -> str:
        """The method's name."""
        return self.resolved.name

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def shots(self) -> int | None:
        """Training images per class (None = the full training portion)."""
        return self.train.shots

    @property
    def alphas(self) -> tuple[float, ...]:
        """The interpolation weights the run is scored at (``(1.0,)``: the fine-tuned model)."""
        return self.eval.alphas

    def config(self) -> dict:
        """The run's config: stored in its record (``config``) and hashed into its name."""
        data = identity(self.columns)
        return (
            {
                "task": self.task,
                "method": self.method,
                "seed": self.seed,
                "shots": self.shots,
                "preset": self.preset,
                "model": self.model,
                "pretrained": self.pretrained,
                "dg": list(self.dg),
                "controls": list(self.controls),
                "train": identity(self.train),
                "method_options": identity(self.resolved.options),
                "eval": identity(self.eval),
                "difficulty": identity(self.difficulty),
            }
            | ({"data": data} if data else {})
            | self._trial_config()
        )

    def _trial_config(self) -> dict:
        """``{"trial": {"index", "values"}}`` in a search, else nothing (hashes outside a search
        stay as they were)."""
        if self.trial is None:
            return {}
        return {"trial": {"index": self.trial.index, "values": dict(self.trial.values)}}

    @property
    def run_id(self) -> str:
        return digest(self.config())

    @property
    def dirname(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.task).strip("-")[:40]
        trial = "" if self.trial is None else f"__t{self.trial.index}"
        return (
            f"{slug}__{self.method}__k{shots_label(self.shots)}__s{self.seed}{trial}__{self.run_id}"
        )


def resolve_run(
    task: str,
    method: ResolvedMethod,
    *,
    preset: str,
    model: str,
    pretrained: str | None,
    device: str,
    train: Mapping | None = None,
    where: str = "train",
    eval: EvalConfig | None = None,
    difficulty_split: str = "train",
    difficulty_holdout: Holdout | None = None,
    dg: tuple[str, ...] = (),
    controls: tuple[str, ...] = (),
    columns: Columns = Columns(),
    trial: Trial | None = None,
) -> RunSpec:
    """The run of ``method`` (looked up already) on ``task``.

    ``train``: settings over preset ``preset``'s for the method (seed and shots included),
    validated as a :class:`~clipgap.training.TrainConfig` whose errors name ``where.KEY``, then
    put on ``device``. ``eval``: how test splits are scored (None: in batches of the train
    config's ``eval_batch_size``, uncapped, no alpha sweep). Difficulty is measured on
    ``difficulty_split``; on the training portion that ``difficulty_holdout`` leaves (None: the
    run's own hold-out). ``trial``: a search's trial; its train values go over ``train`` and
    its method options over ``method``'s (validated by the options class, no lookup).
    """
    from clipgap.training import preset as preset_settings

    merged = {**preset_settings(preset, method, model=model), **(train or {})}
    if trial is not None:
        merged |= trial.train
        method = _with_options(method, trial.method_options)
    resolved = from_dict(TrainConfig, merged, where=where)
    if eval is None:
        eval = EvalConfig(batch_size=resolved.eval_batch_size)
    holdout = difficulty_holdout or resolved.holdout
    return RunSpec(
        task=task,
        resolved=method,
        preset=preset,
        model=model,
        pretrained=pretrained,
        device=device,
        train=_on_device(resolved, device),
        eval=eval,
        difficulty=DifficultySpec.on(difficulty_split, holdout),
        dg=tuple(dg),
        controls=tuple(controls),
        columns=columns,
        trial=trial,
    )


def _with_options(method: ResolvedMethod, options: Mapping) -> ResolvedMethod:
    """``method`` with ``options`` over its options (ConfigError naming ``method.KEY``)."""
    if not options:
        return method
    try:
        return replace(method, options=replace(method.options, **options))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"method {method.name}: {exc}") from None


def _on_device(train: TrainConfig, device: str) -> TrainConfig:
    """``train`` on the run's ``device`` (checked: a one-line ConfigError naming ``device``)."""
    try:
        return replace(train, device=device)
    except ConfigError as exc:
        raise ConfigError(str(exc).removeprefix("train.")) from None
