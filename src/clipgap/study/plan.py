"""Expanding a study config into runs; each run is named by a hash of its resolved config.

A :class:`RunSpec` is everything one run needs: ``clipgap finetune`` builds one from its
arguments (:func:`single_run`), a study expands its config into tasks x methods x shots x seeds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from clipgap.data import digest
from clipgap.study.config import StudyConfig, shots_label


@dataclass(frozen=True)
class RunSpec:
    """One fine-tuning run, fully resolved.

    ``train`` is the resolved :class:`~clipgap.training.TrainConfig` (without ``device``; with
    ``seed`` and ``shots``). ``difficulty`` says where the task's difficulty is measured:
    ``{"split": "train", "val_fraction", "val_max", "val_seed"}`` (the training portion, as
    the trainer holds out validation) or ``{"split": "test"}``. ``columns``: the ``hfds:``
    image/label columns the study names (``data.image_column`` / ``data.label_column``); they
    enter the run's config, and so its hash, only when set.
    """

    task: str
    method: str
    seed: int
    preset: str
    model: str
    pretrained: str | None
    device: str
    dg: tuple[str, ...]
    controls: tuple[str, ...]
    train: dict[str, Any] = field(hash=False)
    method_options: dict[str, Any] = field(hash=False)
    eval: dict[str, Any] = field(hash=False)
    difficulty: dict[str, Any] = field(hash=False)
    columns: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def shots(self) -> int | None:
        """Training images per class (None = the full training portion)."""
        return self.train.get("shots")

    def train_config(self):
        """The run's :class:`~clipgap.training.TrainConfig` on its device."""
        from clipgap.training import TrainConfig

        return TrainConfig(**{**self.train, "device": self.device})

    def config(self) -> dict:
        return {
            "task": self.task,
            "method": self.method,
            "seed": self.seed,
            "shots": self.shots,
            "preset": self.preset,
            "model": self.model,
            "pretrained": self.pretrained,
            "dg": list(self.dg),
            "controls": list(self.controls),
            "train": dict(self.train),
            "method_options": dict(self.method_options),
            "eval": dict(self.eval),
            "difficulty": dict(self.difficulty),
        } | ({"data": dict(self.columns)} if self.columns else {})

    @property
    def run_id(self) -> str:
        # the device is where a run executes, not what it is: it does not enter the hash
        return digest(self.config())

    @property
    def dirname(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.task).strip("-")[:40]
        return f"{slug}__{self.method}__k{shots_label(self.shots)}__s{self.seed}__{self.run_id}"


def resolve_train(cfg: StudyConfig, method: str, seed: int, shots: int | None = None) -> dict:
    """The full training config of one run: preset, then study-wide and per-method overrides,
    then the run's seed and shots.

    Validated here, so a bad key or value fails before anything runs. ``device`` is where a run
    executes, not what it computes, so it is left out (and out of the run hash).
    """
    from clipgap.config import from_dict, to_dict
    from clipgap.training import TrainConfig, preset

    merged = {
        **preset(cfg.preset, method, model=cfg.model),
        **cfg.train,
        **cfg.method_train.get(method, {}),
    }
    merged["seed"] = seed
    merged["shots"] = shots
    where = "train" if method not in cfg.method_train else f"method_train.{method}"
    resolved = to_dict(from_dict(TrainConfig, merged, where=where))
    resolved.pop("device", None)
    return resolved


def resolve_method_options(cfg: StudyConfig, method: str) -> dict:
    """The method's full options (defaults filled in), validated before anything runs."""
    from clipgap.methods import get_method, options_dict

    return options_dict(get_method(method).make_options(cfg.method_options.get(method, {})))


# TrainConfig keys that decide the validation hold-out (and so the training portion).
HOLDOUT_KEYS = ("val_fraction", "val_max", "val_seed")


def difficulty_spec(split: str, train: dict) -> dict:
    """Where difficulty is measured: the test split, or the training portion as a trainer with
    ``train``'s hold-out settings leaves it."""
    if split == "test":
        return {"split": "test"}
    return {"split": split, **{k: train[k] for k in HOLDOUT_KEYS}}


def study_difficulty(cfg: StudyConfig) -> dict:
    """The study's difficulty spec: its split and the study-wide hold-out settings (``train``;
    per-method overrides in ``method_train`` change a run's hold-out, not its task's difficulty)."""
    from clipgap.config import from_dict, to_dict
    from clipgap.training import TrainConfig

    holdout = {k: v for k, v in cfg.train.items() if k in HOLDOUT_KEYS}
    return difficulty_spec(cfg.difficulty.split, to_dict(from_dict(TrainConfig, holdout)))


def plan_runs(cfg: StudyConfig) -> list[RunSpec]:
    """Every (task, method, shots, seed) run of the study, in a stable order."""
    difficulty = study_difficulty(cfg)
    options = {m: resolve_method_options(cfg, m) for m in cfg.methods}
    return [
        RunSpec(
            task=entry.name,
            method=method,
            seed=seed,
            preset=cfg.preset,
            model=cfg.model,
            pretrained=cfg.pretrained,
            device=cfg.device,
            dg=tuple(entry.dg),
            controls=tuple(cfg.controls_for(entry)),
            train=resolve_train(cfg, method, seed, shots),
            method_options=options[method],
            eval=cfg.eval.identity(),
            difficulty=difficulty,
            columns=cfg.data.columns(),
        )
        for entry in cfg.tasks
        for method in cfg.methods
        for shots in cfg.shots
        for seed in cfg.seeds
    ]


def single_run(
    task: str,
    method: str,
    *,
    model: str,
    pretrained: str | None,
    device: str,
    preset: str,
    train: dict,
    method_options: dict,
    difficulty_split: str = "train",
) -> RunSpec:
    """One run outside a study (``clipgap finetune``): no shift domain, no control task.

    ``train`` is the resolved training config (with ``seed`` and ``shots``); test images are
    scored in batches of its ``eval_batch_size``, uncapped.
    """
    train = {k: v for k, v in train.items() if k != "device"}
    return RunSpec(
        task=task,
        method=method,
        seed=train["seed"],
        preset=preset,
        model=model,
        pretrained=pretrained,
        device=device,
        dg=(),
        controls=(),
        train=train,
        method_options=method_options,
        eval={"batch_size": train["eval_batch_size"], "max_test_images": None},
        difficulty=difficulty_spec(difficulty_split, train),
    )
