"""``clipgap evaluate``: top-1 of a fine-tuned checkpoint (and its base model) on any task."""

from __future__ import annotations

from clipgap.cli.common import add_data_args, data_options, table, write_json


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a fine-tuned checkpoint against its zero-shot base on datasets",
        description="Loads the checkpoint onto its base model (rebuilt from the checkpoint, or "
        "--model/--pretrained, which must be the same base) and reports top-1 accuracy of the "
        "fine-tuned and the original model on each dataset, with the difference.",
    )
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint.safetensors from clipgap finetune"
    )
    p.add_argument("--dataset", required=True, nargs="+", help="dataset specs to evaluate on")
    p.add_argument("--split", default="test")
    p.add_argument(
        "--model", default=None, help="base model (default: the one the checkpoint names)"
    )
    p.add_argument("--pretrained", default=None)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", default=None, metavar="OUT", help="also write the numbers to OUT")
    add_data_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import copy

    from clipgap.backbones import load_backbone
    from clipgap.checkpoint import load_checkpoint
    from clipgap.data import load_task
    from clipgap.training import accuracy, zero_shot_model

    base = None
    if args.model:
        base = load_backbone(args.model, args.pretrained, device=args.device)
    tuned = load_checkpoint(
        args.checkpoint, copy.deepcopy(base) if base else None, device=args.device
    )
    if base is None:
        ref = tuned.backbone.base_ref
        base = load_backbone(ref["model"], ref.get("pretrained"), device=args.device)
    original = zero_shot_model(base)
    rows = []
    for spec in args.dataset:
        task = load_task(spec, args.split, options=data_options(args))
        zs = accuracy(original, task, batch_size=args.batch_size)
        ft = accuracy(tuned, task, batch_size=args.batch_size)
        rows.append({"dataset": spec, "zero_shot": zs, "finetuned": ft, "delta": ft - zs})
    print(
        f"checkpoint {args.checkpoint} ({tuned.method} on {tuned.backbone.spec}), split {args.split}"
    )
    print(table(rows))
    if args.json:
        write_json(args.json, {"checkpoint": args.checkpoint, "split": args.split, "results": rows})
        print(f"wrote {args.json}")
    return 0
