"""What ``clipgap study`` prints besides running: ``--status``, the summary after a run and the
``--dry-run`` plan (the runs, their settings and work, and what is missing to run them)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from clipgap.cli.common import device_problem
from clipgap.cli.output import emit_json, say, table


def status(args, out: str) -> int:
    """``clipgap study --status DIR``: counts, then the runs that are not done (a corrupt
    record is a state, not an error: exit 0)."""
    from clipgap.study.status import directory_status

    st = directory_status(out)
    counts = st.counts()
    lines = [
        f"study {out}: {len(st.runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items())
    ]
    lines += [f"running  {r.name}  {r.owner.describe()}" for r in st.of("running")]
    lines += [f"failed   {r.name}  {r.error}" for r in st.of("failed")]
    lines += [f"corrupt  {r.name}  {r.error} (the study redoes it)" for r in st.of("corrupt")]
    for r in st.of("pending"):
        left = "" if r.owner is None else f"  (left by a dead worker: {r.owner.describe()})"
        lines.append(f"pending  {r.name}{left}")
    say(args, *lines)
    runs = [{"name": r.name, "state": r.state, "owner": r.owner.describe() if r.owner else None,
             "error": r.error} for r in st.runs]  # fmt: skip
    emit_json(args, {"out": str(out), "counts": counts, "runs": runs})
    return 0


def _avg(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def summary_table(records) -> str:
    """Mean dID, dDG and CF per method (and per shots, when the study has several)."""
    rows = summary_rows(records)
    return table(rows) if rows else "(no complete runs)"


def summary_rows(records) -> list[dict]:
    """One row per method (and shots, when the study has several): runs, mean dID, dDG, CF;
    of a search, its selected trials only (:func:`clipgap.report.selection.selection_flags`)."""
    from clipgap.record import OUTCOME_LABELS, OUTCOMES
    from clipgap.report.selection import selection_flags
    from clipgap.study.config import shots_label

    done = [r for r in records if r.complete]
    done = [r for r, keep in zip(done, selection_flags(done), strict=True) if keep]
    by_shots = len({r.shots for r in done}) > 1
    groups: dict[tuple, list] = {}
    for r in done:
        groups.setdefault((r.method, r.shots if by_shots else None), []).append(r)
    rows = []

    def order(key: tuple) -> tuple:  # by method, then shots with `all` last
        return key[0], key[1] is None, key[1] or 0

    for (method, shots), rs in sorted(groups.items(), key=lambda kv: order(kv[0])):
        row = {"method": method}
        if by_shots:
            row["shots"] = shots_label(shots)
        row["runs"] = len(rs)
        row.update({OUTCOME_LABELS[o]: _avg(r.outcomes.value(o) for r in rs) for o in OUTCOMES})
        rows.append(row)
    return rows


def dry_run(args, cfg, runs) -> int:
    """List the runs, their resolved settings, the work they imply and the data they need.

    A missing weights file is an error (exit 2, one line). A device absent here is only a
    warning: a study is often planned where it will not run (a laptop, a login node); the worker
    that runs it still refuses an absent device. Runs nothing, downloads nothing."""
    from clipgap.study.config import shots_label
    from clipgap.study.describe import describe_data

    shots = ", ".join(shots_label(k) for k in cfg.shots)
    rows, lines = plan_rows(runs, cfg)
    specs = sorted({s for r in runs for s in (r.task, *r.dg, *r.controls)})
    data = [describe_data(spec, cfg) for spec in specs]
    problems, warnings = [p for p in (weights_problem(cfg.pretrained),) if p], []
    absent = device_problem(cfg.device)
    if absent and absent.startswith("unknown device"):
        problems.append(absent)
    elif absent:
        where = absent.split("; use ")[0]
        warnings.append(f"device {where}: planned anyway; the machine that runs it needs one")
    say(
        args,
        f"study: model{'s' if len(cfg.model_names) > 1 else ''} {', '.join(cfg.model_names)}"
        + (f" ({cfg.pretrained})" if cfg.pretrained else "")
        + f", {len(cfg.tasks)} tasks x {len(cfg.methods)} methods x {len(cfg.shots)} shots "
        f"({shots}) x {len(cfg.seeds)} seeds"
        + (f" x {cfg.search.trials} trials" if cfg.search else "")
        + f" = {len(runs)} runs, preset {cfg.preset}, "
        f"difficulty on the {cfg.difficulty.split} split, device {cfg.device}, out {cfg.out}",
        table(lines),
        f"\ndata needed ({len(specs)} datasets, test splits; train splits for trained tasks):",
        *(f"  {row['dataset']}: {row['status']}" for row in data),
    )
    emit_json(args, {"model": cfg.model, "models": cfg.model_names, "pretrained": cfg.pretrained, "device": cfg.device,
                     "out": cfg.out, "runs": rows, "data": data, "problems": problems,
                     "warnings": warnings})  # fmt: skip
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if problems else 0


def plan_rows(runs, cfg) -> tuple[list[dict], list[dict]]:
    """Per run, the ``--json`` row (resolved settings, work) and the text table's row."""
    from clipgap.study.config import shots_label
    from clipgap.study.describe import describe_run, trial_text, work_text

    rows, lines = [], []
    for r in runs:
        row = {"run": r.dirname, "task": r.task, "method": r.method,
               "shots": shots_label(r.shots), "seed": r.seed, "dg": len(r.dg),
               "controls": len(r.controls)} | describe_run(r, cfg)  # fmt: skip
        rows.append(row)
        t = row["train"]
        lines.append(
            ({"model": r.model} if len(cfg.model_names) > 1 else {})
            | {k: row[k] for k in ("run", "task", "method", "shots", "seed")}
            | {
                "optimizer": t["optimizer"],
                "lr": f"{t['lr']:g}",
                "batch": t["batch_size"],
                "epochs": t["epochs"],
                "work": work_text(row),
            }  # fmt: skip
            | ({"trial": trial_text(row["trial"])} if "trial" in row else {})
        )
    return rows, lines


WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


def weights_problem(pretrained: str | None) -> str | None:
    """Why ``pretrained`` names a weights file that is not there (one line), else None; a
    pretrained tag (no path separator, no weights suffix) is not checked: it downloads."""
    if not pretrained:
        return None
    path = Path(pretrained).expanduser()
    looks_like_path = path.suffix in WEIGHT_SUFFIXES or "/" in pretrained or os.sep in pretrained
    if looks_like_path and not path.is_file():
        return f"pretrained: weights file {pretrained} does not exist"
    return None
