"""Where clipgap keeps its caches (one directory, never inside the working directory), and how
it writes files and folders so that they appear whole or not at all.

A file is written to a temporary sibling and renamed into place (:func:`atomic_write_bytes`); a
folder is filled as a temporary sibling and renamed into place (:func:`atomic_dir`). A write that
fails (a full disk, a lost permission) removes its temporary sibling, leaves what was there
before untouched, and raises an :class:`OSError` that names the path it was writing.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The clipgap cache directory (created), optionally a subdirectory of it.

    ``$CLIPGAP_CACHE`` if set, else ``$XDG_CACHE_HOME/clipgap``, else ``~/.cache/clipgap``.
    """
    root = os.environ.get("CLIPGAP_CACHE")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) / "clipgap" if xdg else Path.home() / ".cache" / "clipgap"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sibling(path: Path, kind: str) -> Path:
    """A hidden sibling of ``path`` no other writer uses (``.NAME.tmp-PID-RANDOM``)."""
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def name_path(exc: OSError, path: str | Path) -> OSError:
    """``exc`` with ``path`` as its file name when it names none (a failed ``write`` or
    ``flush`` does not), so that the message can say which file could not be written."""
    if exc.filename is None:
        exc.filename = str(path)
    return exc


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    On failure the temporary sibling is removed and the :class:`OSError` names ``path``.
    """
    path = Path(path)
    tmp = _sibling(path, "tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename == str(tmp):
            exc.filename = str(path)
        raise name_path(exc, path) from None


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_dir(path: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Fill the folder ``path`` whole or not at all: yields a temporary sibling to write into,
    renamed to ``path`` when the block ends without an error, removed when it raises.

    ``path`` must be absent or an empty folder, unless ``replace``: then a folder already there
    is swapped out for the new one (and removed) only once the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    try:
        tmp.mkdir()
        yield tmp
        _move_into_place(tmp, path, replace=replace)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        name = getattr(exc, "filename", None)
        if isinstance(exc, OSError) and isinstance(name, str) and str(tmp) in name:
            exc.filename = name.replace(str(tmp), str(path))
        raise


def _move_into_place(tmp: Path, path: Path, *, replace: bool) -> None:
    if replace and path.is_dir() and any(path.iterdir()):
        old = _sibling(path, "old")
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            os.replace(old, path)  # put the previous folder back
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    os.replace(tmp, path)  # onto an absent path or an empty folder (POSIX rename)
