"""``clipgap list methods|models|datasets``: what can be named on the command line."""

from __future__ import annotations

import dataclasses

from clipgap.cli.commands import commands
from clipgap.cli.common import add_json_arg, add_output_args, pretrain_world_first
from clipgap.cli.output import emit_json, say, table


@commands.register("list")
def add_parser(sub) -> None:
    p = sub.add_parser(
        "list",
        help="list fine-tuning methods, models (with pretrained tags) or datasets",
        description="methods: name, options, summary (with --model: trainable parameters); "
        "models: every model name with its open_clip pretrained tags (no network); datasets: "
        "the dataset kinds and every world task (world:TASK).",
    )
    p.add_argument("what", choices=["methods", "models", "datasets"], help="what to list")
    p.add_argument(
        "--model", default=None, help="methods: count trainable parameters on this model"
    )
    p.add_argument("--pretrained", default=None, help="methods: pretrained tag or weights file")
    add_json_arg(p, "the list")
    add_output_args(p)
    p.set_defaults(func=run)


def method_rows(model: str | None, pretrained: str | None) -> list[dict]:
    """One row per method: name, summary, options and (with a model) trainable parameters."""
    from clipgap.methods import count_trainable, get_method, method_names
    from clipgap.model import AdaptedModel

    backbone = None
    if model is not None:
        from clipgap.backbones import load_backbone

        backbone = load_backbone(model, pretrained)  # world: pretrain_world_first ran
        backbone.to("meta")  # counting needs shapes only: copies on meta are free
    rows = []
    for name in method_names():
        method = get_method(name)
        row = {
            "method": name,
            "summary": method.summary,
            "options": dataclasses.asdict(method.Options()),
        }
        if backbone is not None:
            formula = method.param_formula(AdaptedModel(backbone))
            row["model"] = backbone.spec
            row["trainable"] = formula or count_trainable(backbone, name)
        rows.append(row)
    return rows


def model_tags() -> dict[str, list[str]]:
    """Every model name -> its open_clip pretrained tags (``open_clip.list_pretrained()``, no
    network); clipgap's named models and shipped configs have none."""
    import open_clip

    from clipgap.backbones import model_names

    tags: dict[str, list[str]] = {name: [] for name in model_names()}
    for name, tag in open_clip.list_pretrained():
        tags.setdefault(name, []).append(tag)
    return tags


def world_variants_note() -> str:
    """How to name a world variant, and its dial keys."""
    from clipgap.world.dials import DIAL_FORMS, SYNTAX

    return (
        f"world variants: {SYNTAX}, e.g. world:mention_rates.texture=0.1 (pretrained on first use "
        f"and cached by config, like world; world-tiny:... likewise); keys: {DIAL_FORMS}"
    )


def dataset_rows() -> list[dict]:
    """The dataset kinds, then every world task as ``world:TASK`` with its classes."""
    from clipgap.data import dataset_names
    from clipgap.world.tasks import world_tasks

    rows = [{"dataset": name, "what": "kind"} for name in dataset_names()]
    for name, task in world_tasks.items():
        what = f"world task: {task.attribute}, {len(task.class_names)} classes"
        rows.append({"dataset": f"world:{name}", "what": what})
    return rows


def _print_methods(args, rows: list[dict]) -> None:
    for row in rows:
        if isinstance(row.get("trainable"), int):
            row["trainable"] = f"{row['trainable']:,}"
        row["options"] = " ".join(f"{k}={v}" for k, v in row["options"].items()) or "-"
    cols = ["method", "trainable", "options", "summary"] if "trainable" in rows[0] else None
    if cols:
        say(args, f"trainable parameters on {rows[0]['model']} (C = number of classes)")
    say(args, table(rows, cols or ["method", "options", "summary"]))


def run(args) -> int:
    if args.what == "methods":
        pretrain_world_first(args.model, args)
        rows = method_rows(args.model, args.pretrained)
        _print_methods(args, [dict(r) for r in rows])
        emit_json(args, rows)
    elif args.what == "models":
        tags = model_tags()
        rows = [{"model": m, "pretrained tags": ", ".join(t) or "-"} for m, t in tags.items()]
        say(args, table(rows), "(-: no tags; clipgap's own or random init, or --pretrained FILE)")
        say(args, world_variants_note())
        emit_json(args, tags)
    else:
        rows = dataset_rows()
        say(
            args,
            table(rows),
            "(a spec is KIND[:ARG][@DOMAIN], e.g. folder:DIR, world:shape@sketch; world:TASK/K: "
            "a class-count variant, see clipgap world tasks)",
        )
        emit_json(args, [r["dataset"] for r in rows])
    return 0
