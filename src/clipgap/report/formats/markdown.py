"""Render blocks to GitHub-flavoured Markdown (figures linked by relative path)."""

from __future__ import annotations

from clipgap.report.formats.blocks import Block, Bullets, Heading, Image, Paragraph, Table, Verdict


def to_markdown(blocks: list[Block]) -> str:
    """GitHub-flavoured Markdown; one blank line between blocks, ending in a newline."""
    return "\n\n".join(_MD[type(block)](block) for block in blocks) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(t: Table) -> str:
    rule = {"l": ":---", "r": "---:"}
    lines = [
        "| " + " | ".join(_md_cell(c) for c in t.columns) + " |",
        "| " + " | ".join(rule[a] for a in t.alignment()) + " |",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in [*t.rows, *t.foot]]
    return "\n".join(lines)


def _md_verdict(v: Verdict) -> str:
    lines = [f"**Claim {v.key}: {v.status.value}.** {v.statement}", ""]
    lines += [f"- {e}" for e in v.evidence]
    return "\n".join(lines)


_MD = {
    Heading: lambda b: "#" * b.level + " " + b.text,
    Paragraph: lambda b: b.text,
    Bullets: lambda b: "\n".join(f"- {item}" for item in b.items),
    Table: _md_table,
    Image: lambda b: f"![{b.title}]({b.path})\n\n*{b.title}.* {b.caption}",
    Verdict: _md_verdict,
}
