"""A tiny document model: the blocks a report is made of (rendered by :mod:`.markdown` and
:mod:`.html`). Text may use ``**bold**``, ``code`` in backticks and ``[links](relative/path)``;
everything else is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clipgap.report.claims import Status


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    """``align`` has one ``"l"`` or ``"r"`` per column (default: first left, others right).
    ``foot`` rows (e.g. a mean over the rows) follow the rows and stay last when the HTML table
    is sorted."""

    columns: list[str]
    rows: list[list[str]]
    align: list[str] = field(default_factory=list)
    foot: list[list[str]] = field(default_factory=list)

    def alignment(self) -> list[str]:
        return self.align or ["l"] + ["r"] * (len(self.columns) - 1)


@dataclass(frozen=True)
class Image:
    path: str  # relative to the report directory
    title: str
    caption: str


@dataclass(frozen=True)
class Verdict:
    key: str
    statement: str
    status: Status
    evidence: list[str]


Block = Heading | Paragraph | Bullets | Table | Image | Verdict
