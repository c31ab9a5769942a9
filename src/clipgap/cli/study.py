"""``clipgap study``: the grid of tasks x methods x shots x seeds, then the report."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from clipgap.cli.commands import commands
from clipgap.cli.common import (
    add_batch_size_arg,
    add_data_args,
    add_device_arg,
    add_json_arg,
    add_output_args,
    add_seed_arg,
    add_tracking_arg,
    device_problem,
    pretrain_world_first,
)
from clipgap.cli.output import emit_json, say, table


class ExecutorNames:
    """The ``--executor`` choices: the executor registry's names, read when argparse first asks
    (a value to check, help to print), so building the parser loads no executor."""

    def __contains__(self, name: object) -> bool:
        from clipgap.study.execution import EXECUTORS

        return name in EXECUTORS

    def __iter__(self):
        from clipgap.study.execution import EXECUTORS

        return iter(EXECUTORS.names())


@commands.register("study")
def add_parser(sub) -> None:
    p = sub.add_parser(
        "study",
        help="run a study grid (default: the embedded world) and write its report",
        description="Run every unfinished run of the study and (re)build its report. "
        "Re-running the same command resumes: finished runs are skipped.",
    )
    p.add_argument("--config", default=None, help="study YAML (default: the embedded-world study)")
    p.add_argument("--out", default=None, help="study directory (default: the config's `out`)")
    p.add_argument(
        "--add",
        action="store_true",
        help="add this study's runs to a directory holding another study",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list the runs and the data they need; run nothing"
    )
    add_device_arg(p, default=None, what="the config's device")
    add_seed_arg(p, default="the config's seeds; SEED runs seeds=[SEED]")
    add_batch_size_arg(p, default=None, what="the config's eval.batch_size")
    add_tracking_arg(p, default="the config's tracking; files under each run's directory")
    add_data_args(p, config=True)
    add_json_arg(p, "the summary; with --dry-run the plan, with --status the runs")
    add_output_args(p)
    p.add_argument(
        "--executor",
        choices=ExecutorNames(),
        default=None,
        metavar="NAME",
        help="where runs execute: %(choices)s (default: the config's `executor`, local)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="Ray cluster to join: auto (the one this machine belongs to) or HOST:PORT; "
        "default: start a local Ray instance",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only every N-th run of the grid from the I-th (0 <= I < N), e.g. "
        "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT",
    )
    p.add_argument(
        "--status",
        default=None,
        metavar="DIR",
        help="print the runs of study directory DIR: done, running (by whom), failed, pending",
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.epochs=2"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from clipgap.report import build_report
    from clipgap.study import load_study_config, plan_runs, run_study
    from clipgap.study.grid import parse_shard

    if args.status is not None:
        return status(args, args.status)
    shard = None if args.shard is None else parse_shard(args.shard)
    cfg = load_study_config(args.config, args.overrides, out=args.out)
    cfg = with_flags(with_executor(cfg, args), args)
    if args.dry_run:
        return dry_run(args, cfg, plan_runs(cfg))
    for model in cfg.model_names:
        pretrain_world_first(model, args)
    outcome = run_study(
        cfg, add=args.add, shard=shard, progress=args.progress, on_finished=build_report
    )
    say(args, *summary_lines(outcome, shard))
    report = outcome.out_dir / "report" / "report.html"
    emit_json(args, {
        "out": str(outcome.out_dir), "shard": None if shard is None else list(shard),
        "planned": outcome.planned, "skipped": outcome.skipped, "completed": outcome.completed,
        "failed": list(outcome.failed), "elsewhere": outcome.elsewhere,
        "summary": summary_rows(outcome.records),
        "report": str(report) if outcome.report_built else None,
    })  # fmt: skip
    return 1 if outcome.failed else 0


def summary_lines(outcome, shard) -> list[str]:
    """What a finished ``clipgap study`` prints: counts, means per method, failures, report."""
    part = "" if shard is None else f" (shard {shard[0]}/{shard[1]})"
    lines = [
        f"study {outcome.out_dir}{part}: {outcome.planned} runs, {outcome.skipped} already done, "
        f"{outcome.completed} run now, {len(outcome.failed)} failed, "
        f"{outcome.elsewhere} by other workers",
        summary_table(outcome.records),
        *(f"failed: {line}" for line in outcome.failed),
    ]
    if outcome.report_built:
        return [*lines, f"report: {outcome.out_dir / 'report' / 'report.html'}"]
    counts = outcome.status.counts()
    return [
        *lines,
        f"report: not built yet ({counts['running']} runs running on other workers, "
        f"{counts['pending']} pending); the last worker to finish builds it "
        f"(see clipgap study --status {outcome.out_dir})",
    ]


def with_executor(cfg, args):
    """The config with the command line's --executor / --ray-address, validated again."""
    from dataclasses import replace

    if args.ray_address is not None:
        cfg = replace(cfg, ray=replace(cfg.ray, address=args.ray_address))
        if args.executor is None:
            args.executor = "ray"
    if args.executor is not None:
        cfg = replace(cfg, executor=args.executor)
    return cfg


def with_flags(cfg, args):
    """The config with --device, --seed, --batch-size, --tracking, --data-root and --download
    applied (each only when given), validated again."""
    from dataclasses import replace

    from clipgap.tracking import tracking_kinds

    data = {"data_root": args.data_root, "download": args.download}
    data = {k: v for k, v in data.items() if v is not None}
    if data:
        cfg = replace(cfg, data=replace(cfg.data, **data))
    if args.batch_size is not None:
        cfg = replace(cfg, eval=replace(cfg.eval, batch_size=args.batch_size))
    if args.device is not None:
        cfg = replace(cfg, device=args.device)
    if args.seed is not None:
        cfg = replace(cfg, seeds=[args.seed])
    if args.tracking is not None:
        cfg = replace(cfg, tracking=list(tracking_kinds(args.tracking, where="--tracking")))
    return cfg


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
