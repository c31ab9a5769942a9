"""``csv:FILE`` tasks: one image per row of a CSV file.

Columns: ``path`` and ``label`` (required); ``split``, ``domain`` and ``classes`` (optional).

- ``path`` is relative to the CSV's folder (an absolute path must lie inside that folder); a
  path that leaves the folder (``..``, or absolute elsewhere) is refused, naming its line.
- The class list is, in order of precedence: a ``classnames.txt`` file beside the CSV (one name
  per line), else the non-empty cells of a ``classes`` column read top to bottom, else the
  sorted unique labels of all rows. The class names are used exactly as written.
- ``label`` is a class name, or an integer index into the class list (a label equal to a class
  name is that class). Integer labels need a class list, since CLIP needs names.
- With a ``split`` column, split ``X`` is the rows whose split is ``X`` (``all``: every row).
  Without one, ``train``/``test`` are a stratified 80/20 cut (seed 0) and ``all`` is every row.
- ``csv:FILE@A`` keeps rows whose ``domain`` is A; ``@A+B`` pools domains A and B.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from clipgap.config import digest
from clipgap.data import DataOptions, datasets
from clipgap.data.base import ImageFiles, Task
from clipgap.data.folder import DEFAULT_TEMPLATES, split_indices
from clipgap.errors import DataError

REQUIRED = ("path", "label")
CLASSNAMES_FILE = "classnames.txt"

Row = tuple[int, dict[str, str]]  # (line number in the file, cells)


@datasets.register("csv")
def csv_task(arg: str, *, split: str, domain: str | None, options: DataOptions) -> Task:
    """Images and labels listed in a CSV file (see the module docstring for the format)."""
    if not arg:
        raise DataError("csv dataset needs a file: csv:FILE")
    table = Path(arg).expanduser()
    if not table.is_file():
        raise DataError(f"CSV file {table} does not exist")
    rows, columns = read_rows(table)
    base = os.path.normpath(table.parent.absolute())
    paths = {n: safe_path(table, base, n, cells["path"]) for n, cells in rows}
    classes, source = class_list(table, rows, columns)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.asarray([label_index(cells["label"], index, f"{table} line {n}", source)
                         for n, cells in rows])  # fmt: skip
    keep = select_rows(table, rows, columns, labels, split, domain)
    kept_paths = [paths[rows[i][0]] for i in keep]
    stats = []
    for i in keep:
        n = rows[i][0]
        try:
            st = os.stat(paths[n])
        except FileNotFoundError:
            raise DataError(f"{table} line {n}: image {paths[n]} does not exist") from None
        stats.append((paths[n], st.st_size, st.st_mtime_ns))
    return Task(
        name=f"csv:{table}",
        split=split,
        images=ImageFiles(kept_paths),
        labels=labels[keep],
        class_names=classes,
        templates=list(DEFAULT_TEMPLATES),
        fingerprint=digest(str(table), stats, labels[keep].tolist(), classes),
        domain=domain,
    )


def read_rows(table: Path) -> tuple[list[Row], set[str]]:
    """The data rows (with their line numbers) and the column names of ``table``."""
    with open(table, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = {(c or "").strip() for c in reader.fieldnames or []}
        gone = [c for c in REQUIRED if c not in columns]
        if gone:
            raise DataError(
                f"CSV file {table} is missing column(s) {', '.join(gone)}; expected a header "
                f"with path,label (optional: split, domain, classes)"
            )
        rows: list[Row] = []
        for cells in reader:
            clean = {(k or "").strip(): (v or "").strip() for k, v in cells.items()
                     if isinstance(v, str)}  # fmt: skip
            if any(clean.values()):
                rows.append((reader.line_num, clean))
    if not rows:
        raise DataError(f"CSV file {table} has a header but no rows")
    return rows, columns


def safe_path(table: Path, base: str, line: int, cell: str) -> str:
    """``cell`` resolved against the CSV's folder ``base``; refuses paths that leave it."""
    if not cell:
        raise DataError(f"{table} line {line}: empty path")
    full = os.path.normpath(os.path.join(base, cell))
    if full != base and not full.startswith(base.rstrip(os.sep) + os.sep):
        raise DataError(
            f"{table} line {line}: path {cell!r} leaves the CSV's folder {base} "
            f"(paths must be relative to it, without '..')"
        )
    return full


def class_list(table: Path, rows: list[Row], columns: set[str]) -> tuple[list[str], str]:
    """The class names and where they came from (see the module docstring)."""
    beside = table.parent / CLASSNAMES_FILE
    if beside.is_file():
        names = [ln.strip() for ln in beside.read_text(encoding="utf-8").splitlines()]
        names, source = [n for n in names if n], str(beside)
    elif "classes" in columns:
        names = [cells.get("classes", "") for _, cells in rows]
        names, source = [n for n in names if n], f"the classes column of {table}"
    else:
        labels = sorted({cells["label"] for _, cells in rows})
        if all(_is_int(x) for x in labels):
            raise DataError(
                f"{table}: labels are integers but there is no class list; put one name per "
                f"line in {beside} or add a classes column"
            )
        return labels, f"the labels of {table}"
    if not names:
        raise DataError(f"{source} lists no class names")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"{source} lists class {dup[0]!r} more than once")
    return names, source


def label_index(raw: str, index: dict[str, int], where: str, source: str) -> int:
    """Class index of a label cell: a class name, else an integer index into the class list."""
    if raw in index:
        return index[raw]
    if _is_int(raw) and 0 <= int(raw) < len(index):
        return int(raw)
    raise DataError(f"{where}: label {raw!r} is not one of the {len(index)} classes in {source}")


def select_rows(
    table: Path,
    rows: list[Row],
    columns: set[str],
    labels: np.ndarray,
    split: str,
    domain: str | None,
) -> np.ndarray:
    """Indices of the rows in ``domain`` (if given) and ``split``."""
    keep = np.arange(len(rows))
    if domain is not None:
        if "domain" not in columns:
            raise DataError(f"{table} has no domain column, so it cannot select domain {domain!r}")
        present = sorted({cells.get("domain", "") for _, cells in rows})
        wanted = domain.split("+")
        unknown = [d for d in wanted if d not in present]
        if unknown:
            raise DataError(
                f"{table} has no domain {unknown[0]!r}; domains: {', '.join(present) or 'none'}"
            )
        keep = np.asarray([i for i in keep if rows[i][1].get("domain") in wanted], dtype=np.int64)
    if "split" not in columns:
        return keep[split_indices(labels[keep], split, what=f"CSV file {table}")]
    if split == "all":
        return keep
    chosen = np.asarray([i for i in keep if rows[i][1].get("split") == split], dtype=np.int64)
    if len(chosen) == 0:
        present = sorted({rows[i][1].get("split", "") for i in keep})
        raise DataError(
            f"{table} has no rows with split {split!r}"
            f"{' in domain ' + repr(domain) if domain else ''}; splits: {', '.join(present)}"
        )
    return chosen


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()
