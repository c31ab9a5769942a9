"""``clipgap world``: the embedded procedural world and its pretrained CLIPs."""

from __future__ import annotations

from pathlib import Path

from clipgap.cli.commands import commands
from clipgap.cli.common import add_output_args
from clipgap.errors import ConfigError


@commands.register("world")
def add_parser(sub) -> None:
    p = sub.add_parser(
        "world",
        help="the embedded world: pretrain its CLIP, look at its tasks",
        description="The embedded world is a procedurally generated image world with a tiny "
        "CLIP pretrained on it, so a whole study runs offline.",
    )
    add_output_args(p)
    wsub = p.add_subparsers(dest="world_command", metavar="WORLD_COMMAND")
    pre = wsub.add_parser("pretrain", help="pretrain a world CLIP (or reuse its cached weights)")
    pre.add_argument(
        "--model",
        default="world",
        help="world (default, used by `make study`), world-tiny, or a variant "
        "world:KEY=VALUE[,KEY=VALUE] (e.g. world:mention_rates.texture=0.1, "
        "world:pretrain.threads=2; `clipgap list models` lists the keys)",
    )
    pre.add_argument("--force", action="store_true", help="pretrain again even if cached")
    add_output_args(pre)
    pre.set_defaults(func=run_pretrain)

    sam = wsub.add_parser("sample", help="write a labelled grid of a task's images")
    sam.add_argument("--task", required=True, help="world task, e.g. shape")
    sam.add_argument(
        "--style", default="photo", help="style (photo, cartoon, sketch, mosaic) or all"
    )
    sam.add_argument("--split", default="test", help="train or test (default test)")
    sam.add_argument("--per-class", type=int, default=4, help="examples per class and style")
    sam.add_argument("--scale", type=int, default=3, help="pixel magnification (default 3)")
    sam.add_argument("--out", required=True, help="PNG file to write")
    add_output_args(sam)
    sam.set_defaults(func=run_sample)

    lst = wsub.add_parser(
        "tasks",
        help="list the world's tasks: classes, class-count variants (TASK/K), control panels",
    )
    add_output_args(lst)
    lst.set_defaults(func=run_tasks)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run_pretrain(args) -> int:
    from clipgap.world.model import ensure_checkpoint, world_model

    model = world_model(args.model)
    ckpt = ensure_checkpoint(model, force=args.force, progress=args.progress)
    info = ckpt.info
    verb = "pretrained" if ckpt.trained else "reused cached"
    print(f"{verb} {model.name}: {ckpt.path}")
    if info:
        threads = info.get("pretrain", {}).get("threads")
        print(
            f"contrastive loss {info['first_loss']:.3f} -> {info['last_loss']:.3f} over "
            f"{info['pairs']} image-caption pairs; pretraining took {info['seconds']:.1f}s"
            + (f" with {threads} torch thread(s)" if threads else "")
        )
    return 0


def run_sample(args) -> int:
    from clipgap.world.config import STYLES
    from clipgap.world.grid import sample_grid

    styles = list(STYLES) if args.style == "all" else [args.style]
    grid = sample_grid(
        args.task, styles, split=args.split, per_class=args.per_class, scale=args.scale
    )
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        grid.save(out)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot write {out}: {exc}") from None
    print(f"wrote {out} ({grid.width}x{grid.height}, task {args.task}, {', '.join(styles)})")
    return 0


def run_tasks(args) -> int:
    from clipgap.cli.output import table
    from clipgap.world.config import MAIN_STYLE, STYLES
    from clipgap.world.panels import control_panel
    from clipgap.world.tasks import WORLD_TASKS, class_counts, task_spec

    rows = []
    for name in WORLD_TASKS:
        t = task_spec(name)
        counts = [k for k in class_counts(t) if k != len(t.class_names)]
        rows.append(
            {
                "task": f"world:{name}",
                "attribute": t.attribute,
                "classes": len(t.class_names),
                "/K": ",".join(map(str, counts)) or "-",
                "controls": " ".join(
                    c.removeprefix("world:") for c in control_panel(f"world:{name}")
                ),
                "class names": ", ".join(t.class_names),
            }
        )
    print(table(rows))
    print(
        "/K: class-count variants world:TASK/K (one attribute: its first K values, in the order "
        "listed; two attributes: K balanced value pairs)"
    )
    print(
        "controls: the panel a study measures a task's forgetting on by default (no shared "
        "label attribute; easy, middle, hard zero-shot)"
    )
    print(f"styles: {', '.join(STYLES)} (main: {MAIN_STYLE}; use world:TASK[/K]@STYLE)")
    return 0
