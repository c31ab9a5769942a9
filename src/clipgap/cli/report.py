"""``clipgap report DIR``: tables, statistics, figures and claim verdicts from a study's records."""

from __future__ import annotations

import argparse

from clipgap.cli.commands import commands
from clipgap.cli.common import add_json_arg, add_output_args
from clipgap.cli.output import emit_json, say


@commands.register("report")
def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="build the report of a study directory (report.md, report.html, results.csv)",
        description="Build STUDY_DIR/report/ from the finished run records in STUDY_DIR/runs. "
        "Never loads a model.",
    )
    p.add_argument("study_dir", metavar="DIR", help="study directory (holds runs/*/record.json)")
    p.add_argument("--out", default=None, help="report directory (default DIR/report)")
    p.add_argument(
        "--level", type=float, default=0.05, help="significance level of the claims (default 0.05)"
    )
    p.add_argument("--alpha", nargs="?", action=RenamedFlag, help=argparse.SUPPRESS)
    p.add_argument(
        "--min-tasks",
        type=int,
        default=4,
        help="fewest tasks for the correlation claims 1 and 2 (default 4)",
    )
    add_json_arg(p, "the report's numbers: measure_ranking per outcome and the claims")
    add_output_args(p)
    p.set_defaults(func=run)


class RenamedFlag(argparse.Action):
    """The old ``--alpha``: a one-line error pointing to ``--level`` (alpha only ever names
    the interpolation weight)."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is now --level (the significance level)")


def run(args) -> int:
    from clipgap.report.build import build_report_analysis
    from clipgap.report.claims import ClaimOptions
    from clipgap.report.numbers import report_numbers

    options = ClaimOptions(level=args.level, min_tasks=args.min_tasks)
    path, analysis = build_report_analysis(args.study_dir, args.out, options=options)
    say(args, str(path), str(path.with_suffix(".html")))
    emit_json(args, report_numbers(analysis, path))
    return 0
