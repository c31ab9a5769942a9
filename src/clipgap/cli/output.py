"""What the CLI prints: human-readable lines, ``--json`` output and plain text tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

from clipgap.cli.common import JSON_STDOUT
from clipgap.errors import ConfigError


def json_to_stdout(args) -> bool:
    return getattr(args, "json", None) == JSON_STDOUT


def say(args, *lines: str) -> None:
    """Human-readable output: stdout, unless stdout carries the JSON."""
    if not json_to_stdout(args):
        for line in lines:
            print(line)


def finite(value):
    """NaN and inf -> null (recursively), so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def emit_json(args, data) -> None:
    """``--json``: ``data`` to stdout, to FILE (saying so), or nowhere without --json."""
    if args.json is None:
        return
    if json_to_stdout(args):
        print(json.dumps(finite(data), indent=2, sort_keys=True))
        return
    write_json(args.json, finite(data))
    print(f"wrote {args.json}")


def write_json(path: str, data) -> None:
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


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
    out = [columns, ["-" * w for w in widths], *cells]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in out
    )
