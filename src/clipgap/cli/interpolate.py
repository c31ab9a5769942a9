"""``clipgap interpolate``: save the model at one alpha between zero-shot and a checkpoint."""

from __future__ import annotations

from pathlib import Path

from clipgap.cli.commands import commands
from clipgap.cli.common import add_device_arg, add_model_args, add_output_args


@commands.register("interpolate")
def add_parser(sub) -> None:
    p = sub.add_parser(
        "interpolate",
        help="save the model between the zero-shot base (0) and a checkpoint (1) at one alpha",
        description="Interpolates between the zero-shot base model (alpha 0) and a fine-tuned "
        "checkpoint (alpha 1) with the method's own rule (WiSE-FT), without retraining, and "
        "writes OUT/checkpoint.safetensors with alpha recorded; clipgap evaluate reads it.",
    )
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint.safetensors from clipgap finetune"
    )
    p.add_argument("--alpha", required=True, help="interpolation weight in [0, 1]")
    p.add_argument("--out", required=True, help="output directory")
    add_model_args(p, required=False)
    add_device_arg(p)
    add_output_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from clipgap.alphas import parse_alphas
    from clipgap.checkpoint import read_metadata, save_checkpoint
    from clipgap.cli.evaluate import load_pair
    from clipgap.errors import ConfigError
    from clipgap.interpolate import interpolate

    alphas = parse_alphas(args.alpha, where="--alpha")
    if len(alphas) != 1:
        raise ConfigError(f"--alpha: expected one number in [0, 1], got {args.alpha!r}")
    extra = read_metadata(args.checkpoint).get("extra") or {}
    base, tuned = load_pair(args)
    model = interpolate(tuned, base, alphas[0])
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output directory {out}: {exc.strerror}") from None
    extra = {**extra, "interpolated_from": str(args.checkpoint)}
    path = save_checkpoint(model, out / "checkpoint.safetensors", extra=extra)
    print(f"wrote {path}: {model.method} on {model.backbone.spec} at alpha={model.alpha:g}")
    return 0
