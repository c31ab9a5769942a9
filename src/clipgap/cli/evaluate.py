"""``clipgap evaluate``: top-1 of a fine-tuned checkpoint (and its base model) on any task,
optionally along the interpolation between the zero-shot model and the checkpoint (``--alphas``).
"""

from __future__ import annotations

from clipgap.cli.commands import commands
from clipgap.cli.common import (
    add_batch_size_arg,
    add_data_args,
    add_device_arg,
    add_json_arg,
    add_model_args,
    add_output_args,
    add_task_args,
    checkpoint_base,
    data_options,
    pretrain_world_first,
)
from clipgap.cli.output import emit_json, say, table


@commands.register("evaluate")
def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a fine-tuned checkpoint against its zero-shot base on datasets",
        description="Loads the checkpoint onto its base model (rebuilt from the checkpoint, or "
        "--model/--pretrained, which must be the same base) and reports top-1 accuracy of the "
        "fine-tuned and the original model on each dataset, with the difference. With --alphas, "
        "reports the accuracy of the model interpolated between zero-shot (alpha 0) and the "
        "checkpoint (alpha 1) at each alpha instead, without retraining.",
    )
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint.safetensors from clipgap finetune"
    )
    p.add_argument("--dataset", required=True, nargs="+", help="dataset specs to evaluate on")
    p.add_argument("--split", default="test")
    p.add_argument(
        "--alphas",
        default=None,
        metavar="A,B,...",
        help="comma-separated interpolation weights in [0, 1] (0 = zero-shot, 1 = the "
        "checkpoint), each once, scored in ascending order, e.g. 0,0.25,0.5,0.75,1",
    )
    add_model_args(p, required=False)
    add_device_arg(p)
    add_batch_size_arg(p)
    add_json_arg(p, "the accuracies")
    add_data_args(p)
    add_task_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def load_pair(args):
    """(base model, fine-tuned model) of ``args.checkpoint`` (base from --model if given)."""
    from clipgap.backbones import load_backbone
    from clipgap.checkpoint import load_with_base

    pretrain_world_first(args.model or checkpoint_base(args.checkpoint), args)
    base = None
    if args.model:
        base = load_backbone(args.model, args.pretrained, device=args.device)
    return load_with_base(args.checkpoint, base, device=args.device)


def describe(args, tuned) -> str:
    """``checkpoint C (method on model[, interpolated at alpha=A])``."""
    from clipgap.interpolate import model_alpha

    alpha = model_alpha(tuned)
    at = "" if alpha is None else f", interpolated at alpha={alpha:g}"
    return f"checkpoint {args.checkpoint} ({tuned.method} on {tuned.backbone.spec}{at})"


def run(args) -> int:
    from clipgap.alphas import parse_alphas
    from clipgap.data import load_task
    from clipgap.interpolate import model_alpha
    from clipgap.training import accuracy, zero_shot_model

    alphas = parse_alphas(args.alphas) if args.alphas is not None else None
    base, tuned = load_pair(args)
    original = zero_shot_model(base)
    tasks = {
        spec: load_task(spec, args.split, options=data_options(args))
        for spec in dict.fromkeys(args.dataset)
    }
    zero_shot = {
        s: accuracy(original, t, batch_size=args.batch_size, progress=args.progress)
        for s, t in tasks.items()
    }
    say(args, f"{describe(args, tuned)}, split {args.split}")
    out = {"checkpoint": args.checkpoint, "split": args.split, "method": tuned.method}
    out["checkpoint_alpha"] = model_alpha(tuned)
    if alphas is None:
        rows = []
        for spec, task in tasks.items():
            ft = accuracy(tuned, task, batch_size=args.batch_size, progress=args.progress)
            zs = zero_shot[spec]
            rows.append({"dataset": spec, "zero_shot": zs, "finetuned": ft, "delta": ft - zs})
        say(args, table(rows))
    else:
        rows = _sweep(args, base, tuned, tasks, alphas, zero_shot)
        out["alphas"] = alphas
    out["results"] = rows
    emit_json(args, out)
    return 0


def _sweep(args, base, tuned, tasks, alphas, zero_shot) -> list[dict]:
    """Print one row per dataset, one column per alpha; return one row per (dataset, alpha)."""
    from clipgap.interpolate import accuracy_along_alphas, model_alpha

    acc = accuracy_along_alphas(
        tuned, base, tasks, alphas, batch_size=args.batch_size, progress=args.progress
    )
    if model_alpha(tuned) is not None:
        say(args, f"alphas are relative to this checkpoint (alpha 1 = the model at "
                  f"alpha={model_alpha(tuned):g} of its fine-tuning)")  # fmt: skip
    wide = [
        {"dataset": s, "zero_shot": zero_shot[s], **{f"alpha={a:g}": acc[s][a] for a in alphas}}
        for s in tasks
    ]
    say(args, table(wide))
    return [
        {"dataset": s, "alpha": a, "accuracy": acc[s][a], "zero_shot": zero_shot[s],
         "delta": acc[s][a] - zero_shot[s]}
        for s in tasks for a in alphas
    ]  # fmt: skip
