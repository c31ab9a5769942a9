"""Render blocks to one self-contained HTML page with Jinja2 (autoescaped template
``assets/report.html.j2``): inline CSS (``assets/report.css``) and script (``assets/report.js``:
sortable tables), a table of contents linking to every section, figures embedded as base64 PNG
data; nothing is loaded from the network, so the file works offline.
"""

from __future__ import annotations

import base64
import re
from functools import cache
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from clipgap.errors import DataError
from clipgap.report.claims import Status
from clipgap.report.formats.blocks import Block, Bullets, Heading, Image, Paragraph, Table, Verdict

ASSETS = "assets"
_STATUS_CLASS = {
    Status.HOLDS: "holds",
    Status.DOES_NOT_HOLD: "fails",
    Status.NOT_SIGNIFICANT: "ns",
    Status.CANNOT_BE_TESTED: "untestable",
}
# [text](target): only relative targets become links (the page never points off the machine).
_LINK = re.compile(r"\[([^\]]+)\]\(([A-Za-z0-9_./#-]+)\)")


def inline(text: str) -> Markup:
    """Escaped text with ``**bold**``, ``code`` in backticks and ``[text](relative/path)``."""
    out = str(escape(text))
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"`(.+?)`", r"<code>\1</code>", out)
    return Markup(_LINK.sub(r'<a href="\2">\1</a>', out))


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("clipgap.report.formats", ASSETS),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["inline"] = inline
    return env


def _asset(name: str) -> Markup:
    """A packaged stylesheet or script, inlined verbatim (it is ours, not user text)."""
    return Markup(resources.files(__package__).joinpath(ASSETS, name).read_text("utf-8"))


def to_html(blocks: list[Block], *, base: Path, title: str) -> str:
    """One HTML page: the blocks, a table of contents after the title (sections and their
    subsections), sortable tables, and figures embedded from ``base`` as base64 PNGs."""
    ids = heading_ids(blocks)
    views = [_view(block, ids.get(i), base) for i, block in enumerate(blocks)]
    toc = {"kind": "toc", "entries": _toc(blocks, ids)}
    first = next((i for i, b in enumerate(blocks) if isinstance(b, Heading) and b.level == 1), -1)
    views.insert(first + 1, toc)
    page = _environment().get_template("report.html.j2")
    return page.render(
        title=title, blocks=views, css=_asset("report.css"), script=_asset("report.js")
    )


def heading_ids(blocks: list[Block]) -> dict[int, str]:
    """Block index -> a unique anchor id for every heading (``Task difficulty`` ->
    ``task-difficulty``; repeats get ``-2``, ``-3``)."""
    ids: dict[int, str] = {}
    seen: set[str] = {"contents"}
    for i, block in enumerate(blocks):
        if not isinstance(block, Heading):
            continue
        slug = re.sub(r"[^a-z0-9]+", "-", block.text.lower()).strip("-") or "section"
        candidate, n = slug, 1
        while candidate in seen:
            n += 1
            candidate = f"{slug}-{n}"
        seen.add(candidate)
        ids[i] = candidate
    return ids


def _toc(blocks: list[Block], ids: dict[int, str]) -> list[dict]:
    """Sections (level 2) with their subsections (level 3)."""
    items: list[dict] = []
    for i, block in enumerate(blocks):
        if not isinstance(block, Heading) or block.level not in (2, 3):
            continue
        entry = {"id": ids[i], "text": block.text, "children": []}
        if block.level == 2 or not items:
            items.append(entry)
        else:
            items[-1]["children"].append(entry)
    return items


def _view(block: Block, anchor: str | None, base: Path) -> dict:
    """What the template needs of one block."""
    if isinstance(block, Heading):
        return {"kind": "heading", "level": block.level, "id": anchor, "text": block.text}
    if isinstance(block, Paragraph):
        return {"kind": "paragraph", "text": block.text}
    if isinstance(block, Bullets):
        return {"kind": "bullets", "entries": block.items}
    if isinstance(block, Table):
        return {
            "kind": "table",
            "columns": block.columns,
            "rows": block.rows,
            "foot": block.foot,
            "align": block.alignment(),
        }
    if isinstance(block, Image):
        return {"kind": "image", "title": block.title, "caption": block.caption,
                "src": _data_uri(base / block.path)}  # fmt: skip
    if isinstance(block, Verdict):
        return {
            "kind": "verdict",
            "key": block.key,
            "status": block.status.value,
            "css": _STATUS_CLASS.get(block.status, "untestable"),
            "statement": block.statement,
            "evidence": block.evidence,
        }
    raise TypeError(f"not a report block: {type(block).__name__}")


def _data_uri(path: Path) -> str:
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as exc:
        raise DataError(f"cannot embed figure {path}: {exc.strerror}") from None
    return f"data:image/png;base64,{data}"
