"""``clipgap finetune``: fine-tune one model on one task with one method.

One run, run the way a study runs each of its runs (:func:`clipgap.study.execute_run`). Writes
``DIR/checkpoint.safetensors`` (trainable tensors + metadata), ``DIR/record.json`` and ``DONE``
(the run record of ``docs/records.md``), ``DIR/metrics.json`` (zero-shot vs fine-tuned ID test
accuracy, parameters, time, memory, best epoch, history) and ``DIR/train.log``. ``DIR``
defaults to ``finetune-out/<dataset>__<method>__k<shots>__s<seed>__<hash of the run config>``.
Under ``torchrun --nproc_per_node N`` the run trains on N processes (DDP); rank 0 writes.
"""

from __future__ import annotations

from pathlib import Path

from clipgap.cli.commands import commands
from clipgap.cli.common import (
    add_batch_size_arg,
    add_data_args,
    add_device_arg,
    add_json_arg,
    add_model_args,
    add_output_args,
    add_seed_arg,
    add_task_args,
    add_tracking_arg,
    data_options,
    pretrain_world_first,
)
from clipgap.cli.output import emit_json, say, write_json
from clipgap.errors import ConfigError


@commands.register("finetune")
def add_parser(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a model on a task with one PEFT method")
    add_model_args(p)
    add_device_arg(p)
    p.add_argument("--dataset", required=True, help="dataset spec, e.g. world:shape")
    p.add_argument("--method", required=True, help="method name (`clipgap list methods`)")
    p.add_argument("--preset", default="tuned", help="training preset: tuned (default) or paper")
    p.add_argument("--out", default=None, help="output directory (default: named by a hash)")
    add_seed_arg(p, default="the preset's, 0")
    p.add_argument(
        "--shots",
        default=None,
        metavar="K",
        help="train on K images per class of the training portion (default: all)",
    )
    p.add_argument(
        "--difficulty-split",
        default="train",
        choices=["train", "test"],
        help="measure the task's difficulty on the training portion (default) or the test split",
    )
    add_batch_size_arg(p, default=None, what="the preset's train.eval_batch_size")
    add_tracking_arg(p, default="tensorboard when installed; files under --out")
    add_json_arg(p, "metrics.json")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="overrides such as train.lr=1e-4 train.epochs=5 method.rank=8",
    )
    add_data_args(p)
    add_task_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def split_overrides(overrides: list[str]) -> tuple[dict, dict]:
    """``["train.lr=1e-4", "method.rank=8"]`` -> ({"lr": "1e-4"}, {"rank": 8})."""
    from clipgap.config import parse_override

    groups: dict[str, dict] = {"train": {}, "method": {}}
    for text in overrides:
        path, value = parse_override(text)
        if len(path) != 2 or path[0] not in groups:
            raise ConfigError(f"override {text!r}: expected train.KEY=VALUE or method.KEY=VALUE")
        groups[path[0]][path[1]] = value
    return groups["train"], groups["method"]


def parse_shots_flag(text: str | None) -> int | None:
    """``--shots``: a positive integer or ``all`` (None when not given)."""
    from clipgap.study.config import parse_shot

    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = text
    return parse_shot(value, where="--shots")


def resolve(args):
    """The run spec from the preset, ``--seed``, ``--shots`` and the overrides
    (:func:`clipgap.study.resolve_run`, as a study resolves each of its runs)."""
    from clipgap.methods import resolve_method
    from clipgap.study import resolve_run

    train_over, method_over = split_overrides(args.overrides)
    method = resolve_method(args.method, method_over)  # the one lookup of the name
    if args.seed is not None:
        train_over["seed"] = args.seed
    if args.batch_size is not None:
        train_over["eval_batch_size"] = args.batch_size
    if args.shots is not None:
        train_over["shots"] = parse_shots_flag(args.shots)
    return resolve_run(
        args.dataset,
        method,
        preset=args.preset,
        model=args.model,
        pretrained=args.pretrained,
        device=args.device,
        train=train_over,
        difficulty_split=args.difficulty_split,
    )


def run(args) -> int:
    from clipgap.record import write_record
    from clipgap.study import RunContext, execute_run, run_log
    from clipgap.tracking import tracking_kinds
    from clipgap.training import is_main_process

    spec = resolve(args)
    pretrain_world_first(spec.model, args)
    out = Path(args.out) if args.out else Path("finetune-out") / spec.dirname
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output directory {out}: {exc.strerror}") from None
    ctx = RunContext(
        model=spec.model,
        pretrained=spec.pretrained,
        device=spec.device,
        options=data_options(args),
        batch_size=spec.eval.batch_size,
        progress=args.progress,
        keep_base=False,  # one run: fine-tune the loaded model in place
    ).with_tracking(tracking_kinds(args.tracking, where="--tracking"))
    if not is_main_process():  # torchrun rank > 0: trains its shards; rank 0 writes
        execute_run(spec, ctx)
        return 0
    with run_log(out / "train.log") as log:
        log.info("finetune %s: %s", spec.dirname, spec.config())
        record = execute_run(spec, ctx, checkpoint=out / "checkpoint.safetensors", run_dir=out)
        log.info("ID test accuracy zero-shot %.4f -> fine-tuned %.4f", *_ids(record))
    metrics = metrics_of(record, model_spec=ctx.backbone.spec)
    write_json(str(out / "metrics.json"), metrics)
    write_record(out, record)
    shots = "" if spec.shots is None else f", {spec.shots} images per class"
    say(
        args,
        f"{args.method} on {args.dataset} ({metrics['model']}): "
        f"{metrics['trainable_params']:,} trainable parameters, {metrics['seconds']:.1f} s, "
        f"peak memory {metrics['peak_memory_mb']:.0f} MB",
        f"ID test accuracy: zero-shot {metrics['zero_shot_accuracy']:.4f} -> fine-tuned "
        f"{metrics['finetuned_accuracy']:.4f} ({metrics['delta_id']:+.4f}); best epoch "
        f"{metrics['best_epoch']} (validation {_pct(metrics['val_accuracy'])}){shots}",
        f"wrote {out}/checkpoint.safetensors, record.json, metrics.json, train.log",
    )
    emit_json(args, {"out": str(out), **metrics})
    return 0


def _ids(record) -> tuple[float, float]:
    return record.zero_shot.id, record.finetuned.id


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def metrics_of(record, *, model_spec: str) -> dict:
    """``metrics.json``: the ID numbers and training facts of a run record, flat."""
    return {
        "model": model_spec,
        "dataset": record.task,
        "method": record.method,
        "preset": record.preset,
        "shots": record.shots,
        "method_options": record.config["method_options"],
        "train": record.config["train"],
        "zero_shot_accuracy": record.zero_shot.id,
        "finetuned_accuracy": record.finetuned.id,
        "delta_id": record.outcomes.delta_id,
        "trainable_params": record.trainable_params,
        "best_epoch": record.best_epoch,
        "val_accuracy": record.val_accuracy,
        "val_accuracy_start": record.val_accuracy_start,
        "seconds": record.seconds,
        "peak_memory_mb": record.peak_memory_mb,
        "history": list(record.history),
    }
