"""The report's output formats: the document model (:mod:`.blocks`) and its two renderings,
GitHub-flavoured Markdown (:mod:`.markdown`) and one self-contained HTML page (:mod:`.html`,
with its template, stylesheet and script in ``assets/``)."""

from __future__ import annotations

from clipgap.report.formats.html import to_html
from clipgap.report.formats.markdown import to_markdown

__all__ = ["to_html", "to_markdown"]
