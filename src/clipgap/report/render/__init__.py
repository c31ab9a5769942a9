"""Rendering a report: its sections as blocks, figures, and Markdown / self-contained HTML."""

from __future__ import annotations

from clipgap.report.render.html import to_html
from clipgap.report.render.markdown import to_markdown

__all__ = ["to_html", "to_markdown"]
