"""``clipgap finetune``: fine-tune one model on one task with one method.

Writes ``DIR/checkpoint.safetensors`` (trainable tensors + metadata), ``DIR/metrics.json``
(zero-shot vs fine-tuned ID test accuracy, parameters, time, memory, best epoch, history) and
``DIR/train.log``. ``DIR`` defaults to ``finetune-out/<dataset>__<method>__<hash of the config>``.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from pathlib import Path

from clipgap.cli.common import add_data_args, add_model_args, data_options, write_json
from clipgap.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a model on a task with one PEFT method")
    add_model_args(p)
    p.add_argument("--dataset", required=True, help="dataset spec, e.g. world:shape")
    p.add_argument("--method", required=True, help="method name (`clipgap list methods`)")
    p.add_argument("--preset", default="tuned", help="training preset: tuned (default) or paper")
    p.add_argument("--out", default=None, help="output directory (default: named by a hash)")
    p.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="overrides such as train.lr=1e-4 train.epochs=5 method.rank=8",
    )
    add_data_args(p)
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


def resolve(args):
    """(TrainConfig, method options) from the preset, ``--seed``, ``--device`` and overrides."""
    from clipgap.config import from_dict
    from clipgap.methods import get_method
    from clipgap.training import TrainConfig, preset

    method = get_method(args.method)
    train_over, method_over = split_overrides(args.overrides)
    kwargs = {**preset(args.preset, args.method), "device": args.device}
    if args.seed is not None:
        kwargs["seed"] = args.seed
    cfg = from_dict(TrainConfig, {**kwargs, **train_over}, where="train")
    return cfg, method.make_options(method_over)


def default_out(args, cfg, opts) -> Path:
    from dataclasses import asdict

    from clipgap.data import digest

    key = digest(args.model, args.pretrained, args.dataset, args.method, asdict(cfg), asdict(opts))
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", args.dataset).strip("-")[:40]
    return Path("finetune-out") / f"{slug}__{args.method}__{key}"


@contextmanager
def log_to(path: Path):
    """Send clipgap's INFO log to ``path`` while keeping the console at its configured level."""
    logger = logging.getLogger("clipgap")
    file_handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = logging.StreamHandler()
    console.setLevel(logging.getLogger().getEffectiveLevel())
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    old = (logger.level, logger.propagate)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(file_handler)
    logger.addHandler(console)
    try:
        yield logger
    finally:
        logger.removeHandler(file_handler)
        logger.removeHandler(console)
        file_handler.close()
        logger.setLevel(old[0])
        logger.propagate = old[1]


def run(args) -> int:
    cfg, opts = resolve(args)
    out = Path(args.out) if args.out else default_out(args, cfg, opts)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output directory {out}: {exc.strerror}") from None
    with log_to(out / "train.log") as log:
        metrics = _finetune(args, cfg, opts, out, log)
    print(
        f"{args.method} on {args.dataset} ({metrics['model']}): "
        f"{metrics['trainable_params']:,} trainable parameters, {metrics['seconds']:.1f} s, "
        f"peak memory {metrics['peak_memory_mb']:.0f} MB"
    )
    print(
        f"ID test accuracy: zero-shot {metrics['zero_shot_accuracy']:.4f} -> fine-tuned "
        f"{metrics['finetuned_accuracy']:.4f} ({metrics['delta_id']:+.4f}); best epoch "
        f"{metrics['best_epoch']} (validation {_pct(metrics['val_accuracy'])})"
    )
    print(f"wrote {out}/checkpoint.safetensors, metrics.json, train.log")
    return 0


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _finetune(args, cfg, opts, out: Path, log) -> dict:
    from dataclasses import asdict

    from clipgap.backbones import load_backbone
    from clipgap.checkpoint import save_checkpoint
    from clipgap.data import load_task
    from clipgap.training import accuracy, finetune, zero_shot_model

    progress = not args.no_progress
    options = data_options(args)
    train_task = load_task(args.dataset, "train", options=options)
    test_task = load_task(args.dataset, "test", options=options)
    backbone = load_backbone(args.model, args.pretrained, device=args.device)
    log.info(
        "finetune %s on %s with %s: train %s, method %s",
        backbone.spec,
        args.dataset,
        args.method,
        asdict(cfg),
        asdict(opts),
    )
    bs = cfg.eval_batch_size
    zs = accuracy(zero_shot_model(backbone), test_task, batch_size=bs, progress=progress)
    result = finetune(
        backbone,
        train_task,
        args.method,
        method_options=opts,
        train=cfg,
        progress=progress,
        copy=False,
    )
    ft = accuracy(result.model, test_task, batch_size=bs, progress=progress)
    save_checkpoint(
        result.model,
        out / "checkpoint.safetensors",
        extra={"dataset": args.dataset, "preset": args.preset},
    )
    metrics = {
        "model": backbone.spec,
        "dataset": args.dataset,
        "method": args.method,
        "preset": args.preset,
        "method_options": asdict(opts),
        "train": asdict(cfg),
        "zero_shot_accuracy": zs,
        "finetuned_accuracy": ft,
        "delta_id": ft - zs,
        "trainable_params": result.trainable_params,
        "best_epoch": result.best_epoch,
        "val_accuracy": result.val_accuracy,
        "seconds": result.seconds,
        "peak_memory_mb": result.peak_memory_mb,
        "history": result.history,
    }
    write_json(str(out / "metrics.json"), metrics)
    log.info("ID test accuracy zero-shot %.4f -> fine-tuned %.4f", zs, ft)
    return metrics
