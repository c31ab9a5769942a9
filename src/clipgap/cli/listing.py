"""``clipgap list methods|models|datasets``: what can be named on the command line."""

from __future__ import annotations

import dataclasses
import json

from clipgap.cli.commands import commands


@commands.register("list")
def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list fine-tuning methods, models or datasets")
    p.add_argument("what", choices=["methods", "models", "datasets"], help="what to list")
    p.add_argument(
        "--model", default=None, help="methods: count trainable parameters on this model"
    )
    p.add_argument("--pretrained", default=None, help="methods: pretrained tag or checkpoint")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def method_rows(model: str | None, pretrained: str | None) -> list[dict]:
    """One row per method: name, summary, options and (with a model) trainable parameters."""
    from clipgap.methods import count_trainable, get_method, method_names
    from clipgap.model import AdaptedModel

    backbone = None
    if model is not None:
        from clipgap.backbones import load_backbone

        backbone = load_backbone(model, pretrained)
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


def _print_methods(rows: list[dict]) -> None:
    from clipgap.cli.common import table

    for row in rows:
        if isinstance(row.get("trainable"), int):
            row["trainable"] = f"{row['trainable']:,}"
        row["options"] = " ".join(f"{k}={v}" for k, v in row["options"].items()) or "-"
    cols = ["method", "trainable", "options", "summary"] if "trainable" in rows[0] else None
    if cols:
        print(f"trainable parameters on {rows[0]['model']} (C = number of classes)")
    print(table(rows, cols or ["method", "options", "summary"]))


def run(args) -> int:
    if args.what == "methods":
        rows = method_rows(args.model, args.pretrained)
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            _print_methods(rows)
        return 0
    if args.what == "models":
        from clipgap.backbones import model_names

        names = model_names()
    else:
        from clipgap.data import dataset_names

        names = dataset_names()
    print(json.dumps(names, indent=2) if args.json else "\n".join(names))
    return 0
