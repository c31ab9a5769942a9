"""The ``clipgap`` command line. Only this package prints.

Each subcommand lives in its own module whose ``add_parser(subparsers)``, registered in
:data:`clipgap.cli.commands.commands`, adds its parser and sets ``func``; expected failures
(:class:`ClipgapError`) print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from clipgap.errors import ClipgapError


def build_parser() -> argparse.ArgumentParser:
    from clipgap import __version__

    parser = argparse.ArgumentParser(
        prog="clipgap",
        description="How far is CLIP from your task, which PEFT method to use, and what did "
        "fine-tuning cost?",
    )
    parser.add_argument("--version", action="version", version=f"clipgap {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch threads for the whole command, world pretraining included (default: "
        "torch's own count; world pretraining uses 1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from clipgap.cli.commands import commands

    for _name, add_parser in commands.items():
        add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The console shows warnings (more with -v); a study's run.log gets INFO through its own
    # handler, so the level sits on this handler rather than on the loggers.
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING - 10 * min(args.verbose, 2))
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), handlers=[console])
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if args.threads is None:
            return int(args.func(args) or 0)
        from clipgap.world.threads import command_threads

        with command_threads(args.threads):
            return int(args.func(args) or 0)
    except ClipgapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "interrupted; finished results are kept, run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
