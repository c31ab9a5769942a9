"""What a study needs, for ``--dry-run``: its data (checked on disk, never fetched), each run's
resolved settings and the work it implies.

A split's size comes from the files when they are found locally, else from the dataset
catalogue's published counts (:data:`clipgap.data.catalog.PAPER_TASKS` ``images``), else it is
unknown. A run's work: the images it trains on (the train split less the validation hold-out,
or k per class with ``shots``) times its epochs, and the test images it scores (its task, DG
domains and control tasks, each capped by ``eval.max_test_images``).
"""

from __future__ import annotations

from functools import lru_cache

from clipgap.data import DataOptions, load_task, parse_spec
from clipgap.errors import ClipgapError

UNKNOWN = "unknown"


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


@lru_cache(maxsize=512)
def split_size(spec: str, split: str, data_root: str | None) -> tuple[int, int] | None:
    """(images, classes) of ``spec``'s ``split``: from local files, else (images, 0) from the
    catalogue's published count (classes unknown), else None. Never downloads."""
    try:
        task = load_task(spec, split, options=DataOptions(data_root=data_root, download=False))
        return len(task), task.n_classes
    except ClipgapError:
        pass
    from clipgap.data.catalog import PAPER_TASKS

    kind, _, domain = parse_spec(spec)
    count = PAPER_TASKS[kind].images.get(split) if kind in PAPER_TASKS and not domain else None
    return None if count is None else (count, 0)


def _train_images(run, data_root) -> int | None:
    """Images one epoch of ``run`` trains on, or None when the train split's size is unknown."""
    size = split_size(run.task, "train", data_root)
    if size is None:
        return None
    n, classes = size
    n_val = run.train.holdout.size(n)
    if run.shots is None:
        return n - n_val
    return min(run.shots * classes, n - n_val) if classes else None


def _eval_images(run, cfg) -> tuple[int, list[str]]:
    """Test images scored (known part) and the datasets whose test size is unknown."""
    total, unknown = 0, []
    control_cap = cfg.eval.max_control_images or cfg.eval.max_test_images
    roles = [(s, cfg.eval.max_test_images) for s in (run.task, *run.dg)]
    for spec, cap in [*roles, *((c, control_cap) for c in run.controls)]:
        size = split_size(spec, "test", cfg.data.data_root)
        if size is None:
            unknown.append(spec)
        else:
            total += size[0] if cap is None else min(cap, size[0])
    return total, unknown


def describe_run(run, cfg) -> dict:
    """The resolved settings of ``run`` and the work it implies (``"unknown"`` where a split's
    size is not known without downloading)."""
    train = {k: getattr(run.train, k) for k in ("optimizer", "lr", "batch_size", "epochs")}
    fit = _train_images(run, cfg.data.data_root)
    evaluated, unknown = _eval_images(run, cfg)
    row = {
        "model": run.model + (f" ({run.pretrained})" if run.pretrained else ""),
        "train": train,
        "train_images": UNKNOWN if fit is None else fit,
        "train_image_epochs": UNKNOWN if fit is None else fit * train["epochs"],
        "eval_images": UNKNOWN if unknown else evaluated,
    }
    if unknown:  # the known part, and which test splits have no known size
        row |= {"eval_images_known": evaluated, "eval_unknown": unknown}
    if run.trial is not None:
        row["trial"] = {"index": run.trial.index, "values": dict(run.trial.values)}
    return row


def trial_text(trial: dict) -> str:
    """``"t2: lr=0.0031, rank=4"`` for a dry-run line."""
    values = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in trial["values"].items())  # fmt: skip
    return f"t{trial['index']}: {values}" if values else f"t{trial['index']}"


def work_text(row: dict) -> str:
    """``"45,000 x 10 = 450,000 training images; 60,000 test images"`` for a dry-run line (the
    test count as "at least N" when a dataset's size is unknown, naming it)."""

    def n(value) -> str:
        return value if value == UNKNOWN else f"{value:,}"

    epochs = row["train"]["epochs"]
    trained = (
        f"{n(row['train_images'])} x {epochs} = {n(row['train_image_epochs'])}"
        if row["train_images"] != UNKNOWN
        else UNKNOWN
    )
    if row["eval_images"] != UNKNOWN:
        return f"{trained} training images; {n(row['eval_images'])} test images"
    missing = ", ".join(row["eval_unknown"])
    return (
        f"{trained} training images; at least {n(row['eval_images_known'])} test images "
        f"(size unknown: {missing})"
    )
