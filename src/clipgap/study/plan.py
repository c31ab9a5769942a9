"""Expanding a study config into runs; each run is named by a hash of its resolved config."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from clipgap.data import digest
from clipgap.study.config import StudyConfig


@dataclass(frozen=True)
class RunSpec:
    """One fine-tuning run of the grid, fully resolved."""

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

    def config(self) -> dict:
        return {
            "task": self.task,
            "method": self.method,
            "seed": self.seed,
            "preset": self.preset,
            "model": self.model,
            "pretrained": self.pretrained,
            "dg": list(self.dg),
            "controls": list(self.controls),
            "train": dict(self.train),
            "method_options": dict(self.method_options),
            "eval": dict(self.eval),
        }

    @property
    def run_id(self) -> str:
        # the device is where a run executes, not what it is: it does not enter the hash
        return digest(self.config())

    @property
    def dirname(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.task).strip("-")[:40]
        return f"{slug}__{self.method}__s{self.seed}__{self.run_id}"


def resolve_train(cfg: StudyConfig, method: str, seed: int) -> dict:
    """The full training config of one run: preset, then study-wide and per-method overrides.

    Validated here, so a bad key or value fails before anything runs. ``device`` is where a run
    executes, not what it computes, so it is left out (and out of the run hash).
    """
    from clipgap.config import from_dict, to_dict
    from clipgap.training import TrainConfig, preset

    merged = {**preset(cfg.preset, method), **cfg.train, **cfg.method_train.get(method, {})}
    merged["seed"] = seed
    where = "train" if method not in cfg.method_train else f"method_train.{method}"
    resolved = to_dict(from_dict(TrainConfig, merged, where=where))
    resolved.pop("device", None)
    return resolved


def resolve_method_options(cfg: StudyConfig, method: str) -> dict:
    """The method's full options (defaults filled in), validated before anything runs."""
    from clipgap.methods import get_method, options_dict

    return options_dict(get_method(method).make_options(cfg.method_options.get(method, {})))


def plan_runs(cfg: StudyConfig) -> list[RunSpec]:
    """Every (task, method, seed) run of the study, in a stable order."""
    from clipgap.config import to_dict

    runs = []
    for entry in cfg.tasks:
        for method in cfg.methods:
            for seed in cfg.seeds:
                train = resolve_train(cfg, method, seed)
                runs.append(
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
                        train=train,
                        method_options=resolve_method_options(cfg, method),
                        eval=to_dict(cfg.eval),
                    )
                )
    return runs
