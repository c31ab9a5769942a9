"""Render blocks to one self-contained HTML page: inline CSS, figures embedded as base64 PNG
data, nothing loaded from the network."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from clipgap.errors import DataError
from clipgap.report.claims import Status
from clipgap.report.render.blocks import Block, Bullets, Heading, Image, Paragraph, Table, Verdict

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .15em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .88em; }
th, td { border: 1px solid #d0d0d0; padding: .25em .6em; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
td.l, th.l { text-align: left; }
code { background: #f4f4f4; padding: 0 .25em; border-radius: 3px; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #e4e4e4; }
figcaption { font-size: .9em; color: #555; }
.claim { border-left: 5px solid #999; padding: .3em .9em; margin: .9em 0; background: #fbfbfb; }
.claim.holds { border-color: #2e7d32; }
.claim.fails { border-color: #c62828; }
.claim.ns { border-color: #ef8f00; }
.claim.untestable { border-color: #9e9e9e; }
.status { font-weight: bold; }
.holds .status { color: #2e7d32; }
.fails .status { color: #c62828; }
.ns .status { color: #b26a00; }
.untestable .status { color: #757575; }
"""
_STATUS_CLASS = {
    Status.HOLDS: "holds",
    Status.DOES_NOT_HOLD: "fails",
    Status.NOT_SIGNIFICANT: "ns",
    Status.CANNOT_BE_TESTED: "untestable",
}


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def to_html(blocks: list[Block], *, base: Path, title: str) -> str:
    """One HTML page with inline CSS and figures embedded from ``base`` as base64 PNGs."""
    body = "\n".join(_html_block(block, base) for block in blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


def _html_block(block: Block, base: Path) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_inline(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Image):
        return _html_image(block, base)
    return _html_verdict(block)


def _html_table(t: Table) -> str:
    align = t.alignment()
    head = "".join(
        f'<th class="{a}">{_inline(c)}</th>' for c, a in zip(t.columns, align, strict=True)
    )
    rows = [
        "<tr>"
        + "".join(f'<td class="{a}">{_inline(c)}</td>' for c, a in zip(row, align, strict=True))
        + "</tr>"
        for row in t.rows
    ]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _html_image(image: Image, base: Path) -> str:
    path = base / image.path
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as exc:
        raise DataError(f"cannot embed figure {path}: {exc.strerror}") from None
    return (
        f'<figure><img alt="{html.escape(image.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption><strong>{_inline(image.title)}.</strong> {_inline(image.caption)}"
        "</figcaption></figure>"
    )


def _html_verdict(v: Verdict) -> str:
    evidence = "".join(f"<li>{_inline(e)}</li>" for e in v.evidence)
    return (
        f'<div class="claim {_STATUS_CLASS.get(v.status, "untestable")}"><p><strong>Claim '
        f'{html.escape(v.key)}:</strong> <span class="status">{html.escape(v.status.value)}</span>. '
        f"{_inline(v.statement)}</p><ul>{evidence}</ul></div>"
    )
