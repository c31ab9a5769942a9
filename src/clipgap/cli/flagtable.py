"""The table of docs/cli.md, generated from the real parsers: every subcommand x common flag.

``python -m clipgap.cli.flagtable`` prints it; ``--write docs/cli.md`` replaces the part of
that file between the markers. ``tests/test_cli_consistency.py`` checks the file against the
parsers, so the document cannot drift from the code.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# The flags every subcommand that takes them shares (defined once, in clipgap.cli.common).
COMMON_FLAGS = (
    "--json",
    "--data-root",
    "--download",
    "--device",
    "--seed",
    "-v/-q",
    "--no-progress",
    "--batch-size",
    "--tracking",
)
START, END = "<!-- flag-table:start -->", "<!-- flag-table:end -->"
# "(default: ...)" and "(here: ...)" say what differs between commands; the rest must not.
_SPECIFIC = re.compile(r"\s*\((default|here): [^()]*(\([^()]*\)[^()]*)*\)")


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def commands(parser: argparse.ArgumentParser | None = None) -> dict[str, argparse.ArgumentParser]:
    """Every command a user runs, by its words (``world pretrain``), with its parser; a command
    with subcommands of its own (``world``) is listed through them."""
    if parser is None:
        from clipgap.cli import build_parser

        parser = build_parser()
    out: dict[str, argparse.ArgumentParser] = {}
    for name, sub in subparsers(parser).items():
        nested = commands(sub)
        out.update({f"{name} {k}": v for k, v in nested.items()} if nested else {name: sub})
    return out


def option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    """The action of option ``flag`` (``-v/-q``: of -v) on ``parser``, or None."""
    flag = flag.split("/")[0]
    return parser._option_string_actions.get(flag)


def meaning(action: argparse.Action) -> str:
    """An option's help without its ``(default: ...)`` and ``(here: ...)``: what must read the
    same on every command."""
    return _SPECIFIC.sub("", action.help or "").strip()


def meanings(cmds: dict[str, argparse.ArgumentParser], flag: str) -> set[str]:
    """Every distinct meaning ``flag`` has across ``cmds`` (one when consistent)."""
    return {meaning(option(p, flag)) for p in cmds.values() if option(p, flag)}


def flag_table(parser: argparse.ArgumentParser | None = None) -> str:
    """The markdown tables: one row per command, one column per common flag; then what each
    flag means (one meaning each, else every variant is shown)."""
    if parser is None:
        from clipgap.cli import build_parser

        parser = build_parser()
    cmds = {"clipgap (before COMMAND)": parser, **commands(parser)}
    head = "| command | " + " | ".join(f"`{f}`" for f in COMMON_FLAGS) + " |"
    lines = [head, "|---" * (len(COMMON_FLAGS) + 1) + "|"]
    for name, sub in cmds.items():
        cells = ["yes" if option(sub, f) else "-" for f in COMMON_FLAGS]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines += ["", "| flag | meaning on every command that takes it |", "|---|---|"]
    for flag in COMMON_FLAGS:
        for part in flag.split("/"):
            texts = "<br>".join(sorted(meanings(cmds, part))).replace("|", "\\|")
            lines.append(f"| `{part}` | {texts} |")
    return "\n".join(lines)


def replace_section(text: str, table: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    before, start, rest = text.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise ValueError(f"markers {START} ... {END} not found")
    return f"{before}{START}\n{table}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    table = flag_table()
    if args[:1] == ["--write"] and len(args) == 2:
        path = Path(args[1])
        path.write_text(replace_section(path.read_text(), table))
        print(f"wrote the flag table into {path}")
        return 0
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
