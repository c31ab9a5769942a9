"""One run of the grid: fine-tune, evaluate ID / DG / controls, and build the record."""

from __future__ import annotations

import logging
import platform
import time

import numpy as np

from clipgap.study.context import StudyContext
from clipgap.study.plan import RunSpec

log = logging.getLogger(__name__)

SCHEMA = 1
# Record keys that measure the machine rather than the science: they differ between two
# otherwise identical runs and are left out when records are compared.
VOLATILE_KEYS = ("seconds", "eval_seconds", "peak_memory_mb", "versions", "device")


def versions() -> dict:
    import open_clip
    import torch

    import clipgap

    return {
        "clipgap": clipgap.__version__,
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "python": platform.python_version(),
    }


def _mean(values) -> float | None:
    values = list(values)
    return float(np.mean(values)) if values else None


def execute_run(run: RunSpec, ctx: StudyContext) -> dict:
    """Fine-tune and evaluate one run; returns its (complete) record."""
    from clipgap.training import TrainConfig, accuracy, finetune

    check_label_spaces(run, ctx)
    zs_id = ctx.zero_shot(run.task)
    zs_dg = {d: ctx.zero_shot(d)["accuracy"] for d in run.dg}
    zs_ctrl = {c: ctx.zero_shot(c)["accuracy"] for c in run.controls}

    train_cfg = TrainConfig(**{**run.train, "device": run.device})
    result = finetune(
        ctx.backbone,  # finetune works on a deep copy; the study's base model stays untouched
        ctx.task(run.task, "train"),
        run.method,
        method_options=run.method_options,
        train=train_cfg,
        progress=ctx.progress,
    )
    model = result.model
    start = time.perf_counter()
    bs = run.eval["batch_size"]

    def acc(spec: str) -> float:
        return float(accuracy(model, ctx.task(spec, "test"), batch_size=bs, progress=False))

    ft_id = acc(run.task)
    ft_dg = {d: acc(d) for d in run.dg}
    ft_ctrl = {c: acc(c) for c in run.controls}
    eval_seconds = time.perf_counter() - start
    dg_delta = {d: ft_dg[d] - zs_dg[d] for d in run.dg}
    cf = {c: ft_ctrl[c] - zs_ctrl[c] for c in run.controls}
    return {
        **identity(run),
        "status": "complete",
        "error": None,
        "difficulty": zs_id["difficulty"],
        "zero_shot": {"id": zs_id["accuracy"], "dg": zs_dg, "control": zs_ctrl},
        "finetuned": {"id": ft_id, "dg": ft_dg, "control": ft_ctrl},
        "delta_id": ft_id - zs_id["accuracy"],
        "delta_dg": _mean(dg_delta.values()),
        "delta_dg_per_domain": dg_delta,
        "cf": cf,
        "cf_mean": _mean(cf.values()),
        "trainable_params": int(result.trainable_params),
        "best_epoch": int(result.best_epoch),
        "val_accuracy": None if result.val_accuracy is None else float(result.val_accuracy),
        "seconds": float(result.seconds),
        "eval_seconds": eval_seconds,
        "peak_memory_mb": float(result.peak_memory_mb),
        "versions": versions(),
        "device": run.device,
    }


def check_label_spaces(run: RunSpec, ctx: StudyContext) -> None:
    """DG domains must share the task's label space: the same classes, or a subset of them
    (ImageNet-R and -A cover 200 of ImageNet's 1000 classes)."""
    from clipgap.errors import DataError

    base = ctx.task(run.task, "test")
    for spec in run.dg:
        shifted = ctx.task(spec, "test")
        extra = sorted(set(shifted.class_names) - set(base.class_names))
        if extra:
            raise DataError(
                f"shift domain {spec} has {len(extra)} classes that task {run.task} lacks "
                f"(e.g. {extra[0]!r}); a DG domain must share the task's label space"
            )


def identity(run: RunSpec) -> dict:
    return {
        "schema": SCHEMA,
        "run_id": run.run_id,
        "task": run.task,
        "method": run.method,
        "seed": run.seed,
        "preset": run.preset,
        "model": run.model,
        "config": run.config(),
    }


def failure_record(run: RunSpec, error: BaseException) -> dict:
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    return {**identity(run), "status": "failed", "error": f"{type(error).__name__}: {message}"}


def comparable(record: dict) -> dict:
    """The record without the keys that measure the machine (for determinism checks)."""
    return {k: v for k, v in record.items() if k not in VOLATILE_KEYS}
