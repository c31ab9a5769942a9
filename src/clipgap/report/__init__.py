"""The study report: a pure function of run records (``build_report``); never loads a model.

Layout: ``study`` (load records through :mod:`clipgap.record`), ``tables`` and ``relations``
(numbers), ``measure_ranking`` and ``frontier`` (further analyses), ``analysis`` (the typed
:class:`~clipgap.report.analysis.Analysis` of a study), ``claims/`` (one module per claim
family, each verdict a ``Status``), then by job: ``sections/`` (the content as blocks),
``figures/`` (the PNG figures) and ``formats/`` (the block model, Markdown and self-contained
HTML), and ``build`` (the entry point). Statistics are pure
functions in :mod:`clipgap.stats`. ``build_report`` is imported lazily so that importing the
package stays light.
"""

from __future__ import annotations

__all__ = ["build_report"]


def __getattr__(name: str):
    if name == "build_report":
        from clipgap.report.build import build_report

        return build_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
