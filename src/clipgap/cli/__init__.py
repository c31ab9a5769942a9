"""The ``clipgap`` command line. Only this package prints.

Each subcommand lives in its own module with ``register(subparsers)`` that adds its parser and
sets ``func``; expected failures (:class:`ClipgapError`) print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from clipgap.errors import ClipgapError

SUBCOMMANDS = [
    "clipgap.cli.difficulty",
    "clipgap.cli.listing",
    "clipgap.cli.world",
    "clipgap.cli.finetune",
    "clipgap.cli.evaluate",
    "clipgap.cli.interpolate",
    "clipgap.cli.study",
    "clipgap.cli.report",
    "clipgap.cli.recommend",
]


def build_parser() -> argparse.ArgumentParser:
    from clipgap import __version__

    parser = argparse.ArgumentParser(
        prog="clipgap",
        description="How far is CLIP from your task, which PEFT method to use, and what did "
        "fine-tuning cost?",
    )
    parser.add_argument("--version", action="version", version=f"clipgap {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in SUBCOMMANDS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
            continue
        module.register(sub)
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
