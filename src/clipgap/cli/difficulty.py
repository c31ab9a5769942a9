"""``clipgap difficulty``: how far is CLIP from a task, before any fine-tuning."""

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
    data_options,
    pretrain_world_first,
)
from clipgap.cli.output import emit_json, say, table

# Every key of task_difficulty, with how to read it (science.md defines each).
READING = {
    "silhouette_modality": "high = image and text clouds apart (misaligned)",
    "silhouette_class": "high = classes form tight clusters with their texts",
    "acs": "high = images close to their class text",
    "zero_shot_accuracy": "top-1 before fine-tuning",
    "modality_gap": "|mean image - mean text|",
    "iimm": "high = images crowded, near wrong texts (more to gain)",
    "logme": "high = easier transfer (evidence per image)",
    "hscore": "high = easier transfer (0 .. C-1)",
    "transrate": "high = easier transfer (nats)",
    "gbc": "high = easier transfer (-C(C-1) .. 0, spherical)",
    "probe_accuracy": "5-fold CV ridge probe on the embeddings (high = easier)",
    "knn_accuracy": "leave-one-out cosine 10-NN, <= 500 sampled queries (high = easier)",
    "n_images": "",
    "n_classes": "",
}
KEYS = list(READING)


@commands.register("difficulty")
def add_parser(sub) -> None:
    p = sub.add_parser("difficulty", help="measure task difficulty on zero-shot embeddings")
    add_model_args(p)
    add_device_arg(p)
    p.add_argument(
        "--dataset", required=True, help="dataset spec, e.g. folder:ROOT or world:shapes"
    )
    p.add_argument("--split", default="test", help="split to measure (default test)")
    p.add_argument(
        "--templates", nargs="+", default=None, help='prompt templates, e.g. "a photo of a {c}."'
    )
    add_batch_size_arg(p)
    p.add_argument(
        "--no-cache", action="store_true", help="do not read or write the embedding cache"
    )
    add_json_arg(p, "the measures")
    add_data_args(p)
    add_task_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from clipgap.backbones import load_backbone
    from clipgap.data import load_task
    from clipgap.difficulty import measure_difficulty

    task = load_task(args.dataset, args.split, options=data_options(args))
    if args.templates:
        task.templates = list(args.templates)
        task.__post_init__()
    pretrain_world_first(args.model, args)
    backbone = load_backbone(args.model, args.pretrained, device=args.device)
    result = measure_difficulty(
        backbone, task, batch_size=args.batch_size, cache=not args.no_cache, progress=args.progress
    )
    out = {k: result[k] for k in KEYS}
    say(
        args,
        f"model {backbone.spec} | dataset {args.dataset} ({args.split})",
        table([{"measure": k, "value": out[k], "reading": READING[k]} for k in KEYS]),
    )
    # NaN (a measure undefined for this task, e.g. one class) is written as null: valid JSON.
    emit_json(args, {"model": backbone.spec, "dataset": args.dataset, "split": args.split, **out})
    return 0
