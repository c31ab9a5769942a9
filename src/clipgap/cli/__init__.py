"""The ``clipgap`` command line. Only this package prints.

Each subcommand lives in its own module whose ``add_parser(subparsers)``, registered in
:data:`clipgap.cli.commands.commands`, adds its parser (with the shared option groups of
:mod:`clipgap.cli.common`) and sets ``func``. :func:`main` turns outcomes into the exit codes of
:data:`EXIT_CODES`: expected failures (:class:`ClipgapError`), errors of the machine (a full
disk, a lost permission: :func:`clipgap.errors.environment_error`) and usage errors print one
line. Threads that stop on an error of the machine (the library hands it to the main thread)
print no traceback of their own.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import traceback

from clipgap.cli.common import Parser, add_output_args, settle
from clipgap.errors import ENVIRONMENT_EXIT, ClipgapError, environment_error

log = logging.getLogger(__name__)

EXIT_CODES = {
    0: "ok (also when stdout was closed early, e.g. piped into head)",
    1: "some runs of a study failed (each wrote a failure record; the other runs are kept)",
    2: "bad input: a usage error or an invalid file, key or value, as one line `error: ...`",
    3: "internal error: a bug; one line asking you to report it (-v adds the traceback)",
    ENVIRONMENT_EXIT: "the machine failed: no space left, permission denied, read-only file system, "
    "I/O error or an output folder deleted mid-run, as one line naming the path; fix it and run "
    "the same command again (a study keeps its finished runs)",
    130: "interrupted (Ctrl-C); finished results are kept, the same command resumes",
}


def exit_code_epilog() -> str:
    lines = ["exit codes:"] + [f"  {code:<4} {text}" for code, text in EXIT_CODES.items()]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from clipgap import __version__

    parser = Parser(
        prog="clipgap",
        description="How far is CLIP from your task, which PEFT method to use, and what did "
        "fine-tuning cost?",
        epilog=exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"clipgap {__version__}")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch threads for the whole command (default: torch's own count); world "
        "pretraining keeps its model's own count (1, or a variant's pretrain.threads)",
    )
    add_output_args(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from clipgap.cli.commands import commands

    for _name, add_parser in commands.items():
        add_parser(sub)
    return parser


def _configure_logging(verbosity: int) -> None:
    # The console shows warnings (more with -v, errors only with -q); a study's run.log gets
    # INFO through its own handler, so the level sits on this handler rather than on the loggers.
    level = logging.WARNING - 10 * max(-2, min(verbosity, 2))
    console = logging.StreamHandler()
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[console])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2, one line printed)
        return exc.code if isinstance(exc.code, int) else 2
    settle(args)
    _configure_logging(args.verbosity)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    hook, threading.excepthook = threading.excepthook, _thread_hook
    try:
        return _dispatch(args)
    except ClipgapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "interrupted; finished results are kept, run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # the reader of stdout stopped reading (| head): not a failure
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug in clipgap, unless the machine failed it
        message = environment_error(exc, kept=KEPT.get(args.command, ""))
        if message is None:
            return _internal_error(exc, args.verbosity)
        if args.verbosity > 0:
            traceback.print_exception(exc, file=sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        return ENVIRONMENT_EXIT
    finally:
        threading.excepthook = hook


# What a command keeps when the machine fails it, for its error line.
KEPT = {"study": "finished runs are kept"}


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    """A thread that dies of an error of the machine (e.g. TensorBoard's writer on a full disk)
    is logged, not printed: its owner raises the error again in the main thread."""
    if environment_error(args.exc_value) is None:
        threading.__excepthook__(args)
        return
    name = args.thread.name if args.thread is not None else "a thread"
    log.info("%s stopped: %s", name, args.exc_value)


def _dispatch(args) -> int:
    if args.threads is None:
        return int(args.func(args) or 0)
    from clipgap.world.threads import command_threads

    with command_threads(args.threads):
        return int(args.func(args) or 0)


def _internal_error(exc: Exception, verbosity: int) -> int:
    if verbosity > 0:
        traceback.print_exception(exc, file=sys.stderr)
    first = (str(exc).splitlines() or [""])[0]
    hint = "with the traceback above" if verbosity > 0 else "(-v shows the traceback)"
    print(
        f"error: internal error ({type(exc).__name__}: {first}); this is a bug in clipgap, "
        f"please report it with the command line {hint}",
        file=sys.stderr,
    )
    return 3
