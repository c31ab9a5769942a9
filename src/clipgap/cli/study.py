"""``clipgap study``: the grid of tasks x methods x shots x seeds, then the report."""

from __future__ import annotations

import numpy as np

from clipgap.cli.commands import commands
from clipgap.cli.common import table


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
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default=None,
        help="where runs execute (default: the config's `executor`, local)",
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
    from clipgap.study import load_study_config, plan_runs, run_study
    from clipgap.study.grid import parse_shard

    if args.status is not None:
        return status(args.status)
    shard = None if args.shard is None else parse_shard(args.shard)
    cfg = with_executor(load_study_config(args.config, args.overrides, out=args.out), args)
    if args.dry_run:
        return dry_run(cfg, plan_runs(cfg))
    outcome = run_study(cfg, add=args.add, shard=shard, progress=not args.no_progress)
    part = "" if shard is None else f" (shard {shard[0]}/{shard[1]})"
    print(
        f"study {outcome.out_dir}{part}: {outcome.planned} runs, {outcome.skipped} already done, "
        f"{outcome.completed} run now, {len(outcome.failed)} failed, "
        f"{outcome.elsewhere} by other workers"
    )
    print(summary_table(outcome.records))
    for line in outcome.failed:
        print(f"failed: {line}")
    if outcome.report_built:
        print(f"report: {outcome.out_dir / 'report' / 'report.html'}")
    else:
        counts = outcome.status.counts()
        print(
            f"report: not built yet ({counts['running']} runs running on other workers, "
            f"{counts['pending']} pending); the last worker to finish builds it "
            f"(see clipgap study --status {outcome.out_dir})"
        )
    return 1 if outcome.failed else 0


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


def status(out: str) -> int:
    """``clipgap study --status DIR``: counts, then the runs that are not done."""
    from clipgap.study.status import directory_status

    st = directory_status(out)
    counts = st.counts()
    print(f"study {out}: {len(st.runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    for r in st.of("running"):
        print(f"running  {r.name}  {r.owner.describe()}")
    for r in st.of("failed"):
        print(f"failed   {r.name}  {r.error}")
    for r in st.of("pending"):
        left = "" if r.owner is None else f"  (left by a dead worker: {r.owner.describe()})"
        print(f"pending  {r.name}{left}")
    return 0


def _avg(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def summary_table(records) -> str:
    """Mean dID, dDG and CF per method (and per shots, when the study has several)."""
    from clipgap.study.config import shots_label

    done = [r for r in records if r.complete]
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
        row.update(
            runs=len(rs),
            dID=_avg(r.delta_id for r in rs),
            dDG=_avg(r.delta_dg for r in rs),
            CF=_avg(r.cf_mean for r in rs),
        )
        rows.append(row)
    return table(rows) if rows else "(no complete runs)"


def dry_run(cfg, runs) -> int:
    from clipgap.study.config import shots_label
    from clipgap.study.describe import describe_data

    shots = ", ".join(shots_label(k) for k in cfg.shots)
    print(
        f"study: model {cfg.model}"
        + (f" ({cfg.pretrained})" if cfg.pretrained else "")
        + f", {len(cfg.tasks)} tasks x {len(cfg.methods)} methods x {len(cfg.shots)} shots "
        f"({shots}) x {len(cfg.seeds)} seeds = {len(runs)} runs, preset {cfg.preset}, "
        f"difficulty on the {cfg.difficulty.split} split, out {cfg.out}"
    )
    rows = [
        {
            "run": r.dirname,
            "task": r.task,
            "method": r.method,
            "shots": shots_label(r.shots),
            "seed": r.seed,
            "dg": len(r.dg),
            "controls": len(r.controls),
        }
        for r in runs
    ]
    print(table(rows))
    specs = sorted({s for r in runs for s in (r.task, *r.dg, *r.controls)})
    print(f"\ndata needed ({len(specs)} datasets, test splits; train splits for trained tasks):")
    for spec in specs:
        row = describe_data(spec, cfg)
        print(f"  {row['dataset']}: {row['status']}")
    return 0
