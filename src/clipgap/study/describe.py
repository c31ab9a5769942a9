"""What data a study needs, for ``--dry-run``: checked on disk, never fetched."""

from __future__ import annotations

from clipgap.data import DataOptions, load_task, parse_spec
from clipgap.errors import ClipgapError


def describe_data(spec: str, cfg) -> dict:
    """One row: the spec, its kind, and whether its test split can be found locally."""
    kind, _, _ = parse_spec(spec)
    options = DataOptions(data_root=cfg.data.data_root, download=False)
    try:
        task = load_task(spec, "test", options=options)
        status = f"found ({len(task)} test images, {task.n_classes} classes)"
    except ClipgapError as exc:
        status = f"missing: {exc}"
    return {"dataset": spec, "kind": kind, "status": status}
