"""The option groups every subcommand shares (what it prints goes through
:mod:`clipgap.cli.output`).

A flag that two subcommands both take is defined once here, so it parses, validates and reads
the same everywhere (``tests/test_cli_consistency.py`` walks every parser to check it, and
``docs/cli.md`` holds the table of subcommand x flag generated from the parsers):

- :func:`add_output_args`: ``-v``/``-q`` and ``--no-progress`` (on ``clipgap`` itself and on every
  subcommand; they add up across levels, see :func:`settle`);
- :func:`add_json_arg`: ``--json [FILE]``, stdout without FILE (and nothing else there);
- :func:`add_model_args`, :func:`add_device_arg`, :func:`add_data_args`, :func:`add_task_args`,
  :func:`add_seed_arg`, :func:`add_batch_size_arg`, :func:`add_tracking_arg`.
"""

from __future__ import annotations

import argparse
import re
import sys

from clipgap.data import DataOptions

JSON_STDOUT = "-"
DEVICES = "cpu, cuda, cuda:N, mps, auto"
DEFAULT_DEVICE = "auto"
_DEVICE = re.compile(r"(cpu|cuda|cuda:\d+|mps|auto)")
# Per-parser destinations of -v, -q and --no-progress: a subparser's namespace overwrites its
# parent's keys, so each level keeps its own and settle() adds them up.
_VERBOSE, _QUIET, _NO_PROGRESS = "verbose@", "quiet@", "no_progress@"


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``error: --flag: what was expected``."""

    def error(self, message: str):
        message = message.removeprefix("argument ")
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


# ---- value types: ArgumentTypeError text follows "--flag: " in the error line


def positive_int(text: str) -> int:
    """An integer >= 1 (``--batch-size``)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def int_value(text: str) -> int:
    """Any integer (``--seed``)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def device_problem(name) -> str | None:
    """Why torch device ``name`` cannot be used here (one line), or None when it can."""
    if not isinstance(name, str) or not _DEVICE.fullmatch(name):
        return f"unknown device {name!r}; choose from {DEVICES}"
    if name in ("cpu", "auto"):
        return None
    import torch

    if name == "mps":
        ok = torch.backends.mps.is_available()
        return None if ok else "'mps' is not available here (no Apple GPU); use cpu or auto"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(name.partition(":")[2] or 0)
    if count == 0:
        return f"{name!r} is not available here (torch sees no CUDA device); use cpu or auto"
    if index >= count:
        return (
            f"{name!r} is not available here ({count} CUDA device(s): cuda:0 .. cuda:{count - 1})"
        )
    return None


def device_value(text: str) -> str:
    """A device that exists on this machine (``--device``); ``auto`` is kept for the library to
    resolve (CUDA when present; under torchrun each process's own GPU, see clipgap.devices)."""
    problem = device_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


# ---- option groups


def add_output_args(p) -> None:
    """``-v``/``-q``/``--no-progress``: on ``clipgap`` itself and on every subcommand."""
    g = p.add_argument_group("output")
    g.add_argument(
        "-v", "--verbose", dest=_VERBOSE + p.prog, action="count", default=0,
        help="more logging (-vv: debug); with an internal error, its traceback",
    )  # fmt: skip
    g.add_argument(
        "-q", "--quiet", dest=_QUIET + p.prog, action="count", default=0,
        help="errors only: no warnings, no progress bars",
    )  # fmt: skip
    g.add_argument(
        "--no-progress", dest=_NO_PROGRESS + p.prog, action="store_true",
        help="no progress bars (they are off anyway when stderr is not a terminal)",
    )  # fmt: skip


def add_json_arg(p, what: str) -> None:
    """``--json [FILE]``: ``what`` as JSON to FILE, or to stdout (and nothing else) without."""
    p.add_argument(
        "--json", nargs="?", const=JSON_STDOUT, default=None, metavar="FILE",
        help="write JSON to stdout, and nothing else there, without FILE (or with FILE -), else "
        f"to FILE besides the usual output; put --json last or write --json=FILE (here: {what})",
    )  # fmt: skip


def add_model_args(p, *, required: bool = True) -> None:
    """``--model`` and ``--pretrained``."""
    p.add_argument(
        "--model",
        required=required,
        default=None,
        help="open_clip name, local-dir:DIR, config .json, hf:ID, world, or a world variant "
        "world:KEY=VALUE[,KEY=VALUE]"
        + ("" if required else " (default: the base model the checkpoint names)"),
    )
    p.add_argument(
        "--pretrained", default=None, help="pretrained tag (needs network) or weights file"
    )


def add_device_arg(p, *, default: str | None = DEFAULT_DEVICE, what: str = "") -> None:
    """``--device``: checked against this machine while parsing."""
    p.add_argument(
        "--device",
        type=device_value,
        default=default,
        help=f"torch device: {DEVICES} (default: {default or what})",
    )


def add_data_args(p, *, config: bool = False) -> None:
    """``--data-root`` and ``--download``; ``config``: they override a config's ``data``."""
    p.add_argument(
        "--data-root",
        default=None,
        help="where datasets live (default: "
        + ("the config's data.data_root, else " if config else "")
        + "$CLIPGAP_DATA or ./data)",
    )
    p.add_argument(
        "--download",
        action="store_true",
        default=None if config else False,
        help="allow downloading datasets that support it"
        + (" (default: the config's data.download)" if config else ""),
    )


def add_task_args(p) -> None:
    """How one task is read: ``--classnames-file``, ``--templates-file`` and the ``hfds:``
    columns ``--image-column`` / ``--label-column``."""
    p.add_argument(
        "--classnames-file", default=None, help="one class name per line, overrides the task's"
    )
    p.add_argument(
        "--templates-file", default=None, help="one prompt template per line ({c} = class)"
    )
    p.add_argument("--image-column", default=None, help="hfds: image column (default: detected)")
    p.add_argument("--label-column", default=None, help="hfds: label column (default: detected)")


def add_seed_arg(p, *, default: str) -> None:
    p.add_argument(
        "--seed", type=int_value, default=None, help=f"training seed (default: {default})"
    )


def add_tracking_arg(p, *, default: str) -> None:
    """``--tracking``: where each run's metrics also go (validated by clipgap.tracking)."""
    p.add_argument(
        "--tracking",
        default=None,
        metavar="KINDS",
        help=f"tensorboard, wandb, both (tensorboard,wandb) or none (default: {default})",
    )


def add_batch_size_arg(p, *, default: int | None = 256, what: str = "") -> None:
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=default,
        metavar="N",
        help="images per forward pass when embedding or evaluating, not the training batch "
        f"(default: {default or what})",
    )


def data_options(args) -> DataOptions:
    return DataOptions(
        data_root=args.data_root,
        download=bool(args.download),
        classnames_file=getattr(args, "classnames_file", None),
        templates_file=getattr(args, "templates_file", None),
        image_column=getattr(args, "image_column", None),
        label_column=getattr(args, "label_column", None),
    )


def pretrain_world_first(model: str | None, args) -> None:
    """Pretrain a world model now (or find it cached), so that its bar follows --no-progress,
    -q and the terminal check; the model's later loading reuses the cache."""
    from clipgap.world.model import ensure_checkpoint, is_world_model

    if is_world_model(model):
        ensure_checkpoint(model, progress=args.progress)


def checkpoint_base(path: str) -> str | None:
    """The base model a fine-tuning checkpoint names (None when it names none)."""
    from clipgap.checkpoint import read_metadata

    meta = read_metadata(path)
    return (meta.get("base_ref") or {}).get("model", meta.get("base_spec"))


def settle(args, *, stderr=None) -> None:
    """Set ``args.verbosity`` (-v count minus -q count, all levels) and ``args.progress`` (bars
    on unless --no-progress or -q at any level, or stderr is not a terminal)."""
    stderr = sys.stderr if stderr is None else stderr
    given = vars(args)
    verbose = sum(v for k, v in given.items() if k.startswith(_VERBOSE))
    quiet = sum(v for k, v in given.items() if k.startswith(_QUIET))
    no_progress = any(v for k, v in given.items() if k.startswith(_NO_PROGRESS))
    args.verbosity = verbose - quiet
    isatty = getattr(stderr, "isatty", None)
    args.progress = not (no_progress or quiet) and bool(isatty and isatty())
