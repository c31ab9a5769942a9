"""The study report: a pure function of run records (``build_report``); never loads a model.

Modules: ``records`` (load and validate), ``tables`` and ``relations`` (numbers), ``claims``
(verdicts on science.md's claims), ``plots`` (figures), ``sections``/``render`` (Markdown and
self-contained HTML), ``build`` (the entry point). ``build_report`` is imported lazily so that
``clipgap.report.stats`` stays light.
"""

from __future__ import annotations

__all__ = ["build_report"]


def __getattr__(name: str):
    if name == "build_report":
        from clipgap.report.build import build_report

        return build_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
