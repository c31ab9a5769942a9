"""Helpers shared by subcommands: common options, tables, JSON output."""

from __future__ import annotations

import json
import math
from pathlib import Path

from clipgap.data import DataOptions
from clipgap.errors import ConfigError


def add_model_args(p) -> None:
    p.add_argument(
        "--model",
        required=True,
        help="open_clip name, local-dir:DIR, config .json, hf:ID, or world",
    )
    p.add_argument(
        "--pretrained", default=None, help="pretrained tag (needs network) or checkpoint file"
    )
    p.add_argument(
        "--device", default="auto", help="auto (CUDA when present; default), cpu, cuda, cuda:1, mps"
    )


def add_data_args(p) -> None:
    p.add_argument(
        "--data-root", default=None, help="where datasets live (default $CLIPGAP_DATA or ./data)"
    )
    p.add_argument(
        "--download", action="store_true", help="allow downloading datasets that support it"
    )
    p.add_argument(
        "--classnames-file", default=None, help="one class name per line, overrides the task's"
    )
    p.add_argument(
        "--templates-file", default=None, help="one prompt template per line ({c} = class)"
    )
    p.add_argument("--image-column", default=None, help="hfds: image column (default: detected)")
    p.add_argument("--label-column", default=None, help="hfds: label column (default: detected)")


def data_options(args) -> DataOptions:
    return DataOptions(
        data_root=args.data_root,
        download=args.download,
        classnames_file=args.classnames_file,
        templates_file=args.templates_file,
        image_column=args.image_column,
        label_column=args.label_column,
    )


def fmt(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4f}"
    return str(value)


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A plain aligned text table."""
    if not rows:
        return "(empty)"
    columns = columns or list(rows[0])
    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)


def write_json(path: str, data) -> None:
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
