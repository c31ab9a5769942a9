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
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.epochs=2"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from clipgap.study import load_study_config, plan_runs, run_study

    cfg = load_study_config(args.config, args.overrides, out=args.out)
    if args.dry_run:
        return dry_run(cfg, plan_runs(cfg))
    outcome = run_study(cfg, add=args.add, progress=not args.no_progress)
    print(
        f"study {outcome.out_dir}: {outcome.planned} runs, {outcome.skipped} already done, "
        f"{outcome.completed} run now, {len(outcome.failed)} failed"
    )
    print(summary_table(outcome.records))
    for line in outcome.failed:
        print(f"failed: {line}")
    print(f"report: {outcome.out_dir / 'report' / 'report.html'}")
    return 1 if outcome.failed else 0


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
