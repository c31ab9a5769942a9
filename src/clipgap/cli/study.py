"""``clipgap study``: the grid of tasks x methods x shots x seeds, then the report."""

from __future__ import annotations

from clipgap.cli.commands import commands
from clipgap.cli.common import (
    add_batch_size_arg,
    add_data_args,
    add_device_arg,
    add_json_arg,
    add_output_args,
    add_seed_arg,
    add_tracking_arg,
    pretrain_world_first,
)
from clipgap.cli.output import emit_json, say
from clipgap.cli.study_views import dry_run, status, summary_rows, summary_table


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
