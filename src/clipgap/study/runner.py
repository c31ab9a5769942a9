"""One run: fine-tune, evaluate ID / DG / controls, and build its :class:`RunRecord`.

:func:`execute_run` is the only way clipgap runs one run: the study calls it for every run of
its grid, ``clipgap finetune`` for its one run (and keeps the checkpoint).
"""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path

from clipgap.alphas import DEFAULT_ALPHAS
from clipgap.record import AlphaPoint, RunRecord, Scores
from clipgap.study.context import CONTROL, RunContext
from clipgap.study.spec import RunSpec
from clipgap.tracking import track_run

log = logging.getLogger(__name__)

__all__ = [
    "check_label_spaces",
    "check_run_shots",
    "execute_run",
    "failure_record",
    "interpolation_points",
]


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


def execute_run(
    run: RunSpec,
    ctx: RunContext,
    *,
    checkpoint: Path | None = None,
    run_dir: Path | None = None,
) -> RunRecord | None:
    """Fine-tune and evaluate one run; returns its complete record (None on the ranks > 0 of a
    ``torchrun`` launch, which only train their part of each batch: see
    :mod:`clipgap.training.distributed`).

    Zero-shot accuracies (ID, DG, controls) are on test splits; difficulty is measured where
    ``run.difficulty`` says (the training portion by default). With ``eval.alphas`` other than
    ``[1]``, the model interpolated at each alpha is scored too (:func:`interpolation_points`).
    ``checkpoint``: also save the fine-tuned model there. ``run_dir``: where the trackers of
    ``ctx.tracking`` (TensorBoard, W&B) write; none without it. Raises the trainer's and loaders'
    errors (a study turns them into a failure record).
    """
    from clipgap.training import finetune, is_main_process

    if not is_main_process():  # torchrun rank > 0: trains its part of each batch, nothing else
        task = ctx.task(run.task, "train")
        finetune(ctx.backbone, task, run.resolved, train=run.train, copy=ctx.keep_base)
        return None
    check_label_spaces(run, ctx)
    check_run_shots(run, ctx)
    difficulty = ctx.difficulty(run.task, run.difficulty)
    zero_shot = Scores(
        id=ctx.zero_shot_accuracy(run.task),
        dg={d: ctx.zero_shot_accuracy(d) for d in run.dg},
        control={c: ctx.zero_shot_accuracy(c, CONTROL) for c in run.controls},
    )
    kinds = ctx.tracking if run_dir is not None else ()
    with track_run(kinds, run_dir, run.config()) as tracker:
        record = _train_and_score(run, ctx, difficulty, zero_shot, checkpoint, [tracker])
        tracker.log_record(record)
    return record


def _train_and_score(run, ctx, difficulty, zero_shot, checkpoint, callbacks) -> RunRecord:
    from clipgap.training import finetune

    result = finetune(
        ctx.backbone,  # a deep copy is trained unless the context gives up its base model
        ctx.task(run.task, "train"),
        run.resolved,  # the method looked up once, with its options, when the run was resolved
        train=run.train,
        progress=ctx.progress,
        copy=ctx.keep_base,
        callbacks=callbacks,
    )
    start = time.perf_counter()
    finetuned = _scores(result.model, run, ctx)
    at_one = AlphaPoint(1.0, finetuned, _float_or_none(result.val_accuracy))
    interpolation = interpolation_points(result.model, run, ctx, at_one=at_one, zero_shot=zero_shot)
    eval_seconds = time.perf_counter() - start
    if checkpoint is not None:
        from clipgap.checkpoint import save_checkpoint

        extra = {"dataset": run.task, "preset": run.preset, "shots": run.shots}
        save_checkpoint(result.model, checkpoint, extra=extra)
    return RunRecord(
        **identity(run),
        status="complete",
        difficulty=difficulty,
        zero_shot=zero_shot,
        finetuned=finetuned,
        trainable_params=int(result.trainable_params),
        best_epoch=int(result.best_epoch),
        val_accuracy=_float_or_none(result.val_accuracy),
        val_accuracy_start=_float_or_none(result.val_accuracy_start),
        history=tuple(result.history),
        interpolation=interpolation,
        seconds=float(result.seconds),
        eval_seconds=eval_seconds,
        peak_memory_mb=float(result.peak_memory_mb),
        versions=versions(),
        device=result.placement,  # e.g. 'cuda:0, bf16, 4 processes' (auto resolved)
    )


def _scores(model, run: RunSpec, ctx: RunContext) -> Scores:
    """``model``'s test accuracies on the run's task, DG domains and controls, on the splits
    ``ctx`` prepared once for all its runs (equal to :func:`clipgap.training.accuracy`)."""
    from clipgap.training.evaluate import split_accuracy

    embedded = model.image_tower_frozen

    def acc(spec: str, split: str = "test") -> float:
        return float(split_accuracy(model, ctx.prepared(spec, split, embedded=embedded)))

    return Scores(
        id=acc(run.task),
        dg={d: acc(d) for d in run.dg},
        control={c: acc(c, CONTROL) for c in run.controls},
    )


def interpolation_points(
    model, run: RunSpec, ctx: RunContext, *, at_one: AlphaPoint, zero_shot: Scores
) -> tuple[AlphaPoint, ...]:
    """The fine-tuned ``model`` interpolated at each of the run's alphas, scored on the task's
    test split, its DG domains and control tasks, and on the trainer's validation split of the
    run (the images that chose the epoch: ``training_splits`` of the run's train config), with
    :func:`clipgap.interpolate.accuracy_along_alphas` (each alpha's model built once, each
    split prepared once, raw embeddings from the cache with a frozen image tower).

    The two ends are not scored again. ``at_one`` is the point at alpha = 1, the fine-tuned
    model itself, already scored (its test scores and the trainer's validation accuracy of the
    kept epoch); ``zero_shot`` are the run's zero-shot test scores, the point at alpha = 0
    with the original model's accuracy on the run's validation split (computed once per task,
    shared by the methods). Interpolation gives the fine-tuned model bit for bit at alpha = 1
    and the zero-shot model at alpha = 0 (bit for bit for methods that train tensors of the
    model, within a few ulps of the logits for the probe and CLIP-Adapter:
    tests/test_interpolate.py). ``()`` for the default alphas ``[1]``. Validation accuracy is
    None when the run holds out no validation split (``train.val_fraction=0``).
    """
    alphas = run.alphas
    if alphas == DEFAULT_ALPHAS:
        return ()
    if not ctx.keep_base:
        from clipgap.errors import ConfigError

        raise ConfigError(
            "eval.alphas: interpolation needs the untouched base model, but this run "
            "fine-tunes it in place"
        )
    ends = {1.0: at_one}
    if 0.0 in alphas:
        val = ctx.zero_shot_val_accuracy(run.task, run.train.holdout)
        ends[0.0] = AlphaPoint(0.0, zero_shot, val)
    others = [a for a in alphas if a not in ends]
    start = time.perf_counter()
    measured = _along_alphas(model, run, ctx, others) if others else {}
    log.info("scored alphas %s in %.1f s", others, time.perf_counter() - start)
    return tuple(ends[a] if a in ends else measured[a] for a in alphas)


def _along_alphas(model, run: RunSpec, ctx: RunContext, alphas: list[float]) -> dict:
    """{alpha: AlphaPoint} scored with :func:`clipgap.interpolate.accuracy_along_alphas`."""
    from clipgap.interpolate import accuracy_along_alphas
    from clipgap.training import training_splits

    embedded = model.image_tower_frozen
    specs = dict.fromkeys((run.task, *run.dg))
    tasks = {f"test|{spec}": ctx.prepared(spec, "test", embedded=embedded) for spec in specs}
    for spec in run.controls:
        tasks[f"{CONTROL}|{spec}"] = ctx.prepared(spec, CONTROL, embedded=embedded)
    _, val_task = training_splits(ctx.task(run.task, "train"), run.train)
    if val_task is not None:
        tasks["val"] = val_task
    acc = accuracy_along_alphas(model, ctx.backbone, tasks, alphas, batch_size=run.eval.batch_size)

    def test(spec: str, alpha: float, split: str = "test") -> float:
        return float(acc[f"{split}|{spec}"][alpha])

    return {
        a: AlphaPoint(
            alpha=a,
            scores=Scores(
                id=test(run.task, a),
                dg={d: test(d, a) for d in run.dg},
                control={c: test(c, a, CONTROL) for c in run.controls},
            ),
            val_accuracy=None if val_task is None else float(acc["val"][a]),
        )
        for a in alphas
    }


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)


def check_label_spaces(run: RunSpec, ctx: RunContext) -> None:
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


def check_run_shots(run: RunSpec, ctx: RunContext) -> None:
    """Every class of the run's training portion has at least ``run.shots`` images (a one-line
    ConfigError naming the task, the class and its count otherwise). Nothing is encoded."""
    if run.shots is None:
        return
    from clipgap.training import check_shots

    holdout = run.train.holdout
    check_shots(
        ctx.task(run.task, "train"),
        run.shots,
        val_fraction=holdout.val_fraction,
        val_max=holdout.val_max,
        val_seed=holdout.val_seed,
    )


def identity(run: RunSpec) -> dict:
    return {
        "run_id": run.run_id,
        "task": run.task,
        "method": run.method,
        "seed": run.seed,
        "preset": run.preset,
        "model": run.model,
        "config": run.config(),
        "shots": run.shots,
    }


def failure_record(run: RunSpec, error: BaseException) -> RunRecord:
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    return RunRecord(**identity(run), status="failed", error=f"{type(error).__name__}: {message}")
