"""``clipgap export``: a fine-tuning checkpoint as open_clip, Hugging Face or peft files."""

from __future__ import annotations

from clipgap.cli.commands import commands
from clipgap.cli.common import (
    add_device_arg,
    add_output_args,
    checkpoint_base,
    pretrain_world_first,
)
from clipgap.export import FORMATS


@commands.register("export")
def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a fine-tuned checkpoint to open_clip, Hugging Face or peft files",
        description="Writes the fine-tuned model of a `clipgap finetune` checkpoint into a new "
        "or empty folder: open_clip (local-dir: folder with merged weights), hf "
        "(CLIPModel.save_pretrained + CLIPProcessor files) or peft (LoRA only: DIR/base, the "
        "untouched HF base, and DIR/adapter). The base model is rebuilt from the checkpoint.",
    )
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint.safetensors from clipgap finetune"
    )
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    add_device_arg(p)
    add_output_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from clipgap.export import export_checkpoint

    pretrain_world_first(checkpoint_base(args.checkpoint), args)
    manifest = export_checkpoint(args.checkpoint, args.format, args.out, device=args.device)
    print(
        f"exported {manifest['method']} checkpoint {args.checkpoint} as {args.format} to "
        f"{args.out}: {', '.join(manifest['files'])}"
    )
    print(f"load with: {manifest['load']}")
    return 0
