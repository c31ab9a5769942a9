"""``clipgap difficulty``: how far is CLIP from a task, before any fine-tuning."""

from __future__ import annotations

import math

from clipgap.cli.commands import commands
from clipgap.cli.common import add_data_args, add_model_args, data_options, table, write_json

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
    "n_images": "",
    "n_classes": "",
}
KEYS = list(READING)


@commands.register("difficulty")
def add_parser(sub) -> None:
    p = sub.add_parser("difficulty", help="measure task difficulty on zero-shot embeddings")
    add_model_args(p)
    p.add_argument(
        "--dataset", required=True, help="dataset spec, e.g. folder:ROOT or world:shapes"
    )
    p.add_argument("--split", default="test", help="split to measure (default test)")
    p.add_argument(
        "--templates", nargs="+", default=None, help='prompt templates, e.g. "a photo of a {c}."'
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--no-cache", action="store_true", help="do not read or write the embedding cache"
    )
    p.add_argument("--json", default=None, metavar="OUT", help="also write the numbers to OUT")
    add_data_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from clipgap.backbones import load_backbone
    from clipgap.data import load_task
    from clipgap.difficulty import measure_difficulty

    task = load_task(args.dataset, args.split, options=data_options(args))
    if args.templates:
        task.templates = list(args.templates)
        task.__post_init__()
    backbone = load_backbone(args.model, args.pretrained, device=args.device)
    result = measure_difficulty(backbone, task, batch_size=args.batch_size, cache=not args.no_cache)
    out = {k: result[k] for k in KEYS}
    print(f"model {backbone.spec} | dataset {args.dataset} ({args.split})")
    print(table([{"measure": k, "value": out[k], "reading": READING[k]} for k in KEYS]))
    if args.json:
        # NaN (a measure undefined for this task, e.g. one class) is written as null: valid JSON.
        numbers = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in out.items()}
        meta = {"model": backbone.spec, "dataset": args.dataset, "split": args.split}
        write_json(args.json, {**meta, **numbers})
        print(f"wrote {args.json}")
    return 0
