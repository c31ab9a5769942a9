"""The registry of ``clipgap`` subcommands: each CLI module registers the function that adds
its parser (``@commands.register("difficulty")``); listed here in the order ``--help`` shows."""

from __future__ import annotations

from collections.abc import Callable

from clipgap.registry import Registry

commands: Registry[Callable] = Registry(
    "command",
    plugins=[
        f"clipgap.cli.{module}"
        for module in (
            "difficulty",
            "listing",
            "world",
            "finetune",
            "evaluate",
            "interpolate",
            "export",
            "study",
            "report",
            "recommend",
        )
    ],
)
