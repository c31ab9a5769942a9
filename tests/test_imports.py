"""The import rules and the repository's own links.

- No import cycle among clipgap's modules, counting every import anywhere in a file (inside
  functions too, which the interpreter tolerates and ``lint-imports`` does not look for): each
  module's AST is read, each import of a clipgap module becomes an edge, and the strongly
  connected components of that graph (scipy) must all be single modules.
- docs/architecture.md's "may import" table and the import-linter contracts in pyproject.toml
  (run by ``lint-imports`` in ``make test``) say the same thing: one forbidden contract per row,
  forbidding exactly the clipgap packages the row does not list.
- Every relative link in README.md and docs/*.md points at a file of the repository.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

if sys.version_info >= (3, 11):
    import tomllib
else:  # import-linter brings tomli on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


# ---- import cycles ---------------------------------------------------------------------------


def module_files(package: str = "clipgap") -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` (``__init__`` = the package)."""
    out = {}
    for path in sorted((SRC / package).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every clipgap module ``name`` imports anywhere in its file. ``from a.b import c`` is an
    edge to ``a.b.c`` when that is a module, else to ``a.b``; relative imports are resolved. An
    import of the module's own parent package is no edge: Python runs a package's
    ``__init__`` before any of its modules, whoever imports them."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, each sorted."""
    names = sorted(graph)
    index = {n: i for i, n in enumerate(names)}
    rows = [index[a] for a in names for b in graph[a]]
    cols = [index[b] for a in names for b in graph[a]]
    matrix = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), len(names)))
    _, labels = connected_components(matrix, directed=True, connection="strong")
    groups: dict[int, list[str]] = {}
    for name, label in zip(names, labels, strict=True):
        groups.setdefault(int(label), []).append(name)
    return sorted(g for g in groups.values() if len(g) > 1)


def test_the_cycle_finder_sees_imports_inside_functions(tmp_path):
    """A two-module cycle whose second edge is a lazy import inside a function is found; the
    same files without that import have none."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import g\nimport pkg\n")
    (pkg / "b.py").write_text("def g():\n    from pkg import a\n    return a\n")
    modules = {"pkg": pkg / "__init__.py", "pkg.a": pkg / "a.py", "pkg.b": pkg / "b.py"}
    graph = {n: imported_modules(n, p, modules) for n, p in modules.items()}
    assert graph["pkg.b"] == {"pkg.a"} and graph["pkg.a"] == {"pkg.b"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]
    (pkg / "b.py").write_text("def g():\n    return 1\n")
    graph = {n: imported_modules(n, p, modules) for n, p in modules.items()}
    assert cycles(graph) == []


def test_relative_imports_resolve_to_the_module(tmp_path):
    path = tmp_path / "s.py"
    path.write_text("from . import r\nfrom .r import x\nfrom .. import t\n")
    modules = {"p": Path("p/__init__.py"), "p.q": Path("p/q/__init__.py"), "p.q.r": Path("r.py")}
    modules |= {"p.t": Path("t.py"), "p.q.s": path}
    # ``from .. import t`` names the module p.t; ``p.q`` and ``p`` are s's own parents
    assert imported_modules("p.q.s", path, modules) == {"p.q.r", "p.t"}


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles (imports inside functions count): " + "; ".join(
        " <-> ".join(group) for group in found
    )


# ---- the architecture table and the import-linter contracts ---------------------------------


def top_level_modules() -> set[str]:
    """clipgap's top-level packages and modules, as the table names them (no ``__main__``)."""
    return {
        name.split(".")[1] for name in module_files() if "." in name and name != "clipgap.__main__"
    }


def table_rows() -> list[tuple[set[str], set[str] | None]]:
    """(the packages of a row, what they may import: clipgap names only; None = everything)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    known = top_level_modules()
    rows, above = [], set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = {n.strip("/") for n in re.findall(r"`([^`]+)`", cells[0])}
        assert names <= known, f"architecture.md names unknown packages: {names - known}"
        may = cells[2]
        if may == "everything":
            allowed = None
        elif may.startswith("every package above"):
            but = set(re.findall(r"`([^`]+)`", may))
            allowed = above - but
        else:
            allowed = {n.strip("/") for n in re.findall(r"`([^`]+)`", may)} & known
        rows.append((names, allowed))
        above |= names
    return rows


def contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["contracts"]


def test_every_table_row_is_one_forbidden_contract():
    known = top_level_modules()
    rows = table_rows()
    assert len(rows) >= 15, "the architecture table was not found"
    covered = set().union(*(names for names, _ in rows))
    assert covered == known, f"packages missing from the table: {sorted(known - covered)}"
    by_source = {frozenset(c["source_modules"]): c for c in contracts() if c["type"] == "forbidden"}
    for names, allowed in rows:
        if allowed is None:
            continue
        source = frozenset(f"clipgap.{n}" for n in names)
        assert source in by_source, f"no import-linter contract for the row {sorted(names)}"
        contract = by_source[source]
        want = {f"clipgap.{n}" for n in known - allowed - names}
        assert set(contract["forbidden_modules"]) == want, (
            f"contract {contract['name']!r} disagrees with the table: forbids "
            f"{sorted(set(contract['forbidden_modules']) - want)} the row allows, misses "
            f"{sorted(want - set(contract['forbidden_modules']))}"
        )
        assert contract.get("allow_indirect_imports") == "True", contract["name"]


def test_the_table_parser_reads_rows():
    rows = {frozenset(names): allowed for names, allowed in table_rows()}
    assert rows[frozenset({"cli"})] is None
    assert rows[frozenset({"errors", "paths"})] == set()
    assert "report" not in rows[frozenset({"study"})] and "training" in rows[frozenset({"study"})]


# ---- links inside the repository -------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]


def test_relative_links_resolve_inside_the_repository():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert (ROOT / "docs" / "science.md") in pages
    broken = []
    for page in pages:
        for target in relative_links(page):
            where = (page.parent / target.partition("#")[0]).resolve()
            if not where.is_relative_to(ROOT) or not where.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "links that leave the repository or lead nowhere: " + ", ".join(broken)


def test_link_finder(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("[a](docs/x.md) [b](https://e.org) [c](#here) `[d](y)`\n```\n[e](z)\n```\n")
    assert relative_links(page) == ["docs/x.md", "y"]
