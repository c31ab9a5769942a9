"""Study-wide files that a study's workers share (``study.json``, ``zero_shot.json``): each is
read, changed and written under a lock of its own (``DIR/locks/NAME.lock``) and replaced
atomically, so no worker's update is lost and no reader sees a torn file."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from clipgap.paths import atomic_write_text
from clipgap.study.locks import lock_dir

log = logging.getLogger(__name__)


@contextmanager
def _held(lock_path: Path, *, timeout: float, what: str) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        log.warning("%s stayed locked for %.0f s; going on without the lock", what, timeout)
        yield
        return
    try:
        yield
    finally:
        lock.release()


def file_lock(path: str | Path, *, timeout: float = 600.0):
    """Hold the lock of the study-wide file ``path`` (``DIR/locks/NAME.lock``) around a
    read-modify-write of it. After ``timeout`` seconds the write goes on without it (logged):
    each write is atomic, so the worst outcome is a lost update, never a torn file."""
    path = Path(path)
    return _held(lock_dir(path.parent) / f"{path.name}.lock", timeout=timeout, what=str(path))


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("ignoring unreadable %s; its values are computed again", path)
        return {}


def shared_json_entry(path: str | Path, key: str, fingerprint: str, compute, *, wait: float = 3600):
    """Entry ``key`` (``{"fingerprint", "value"}``) of the JSON file ``path`` that a study's
    workers share, computed once: the first worker to miss it computes it while holding the
    key's lock (others wait up to ``wait`` seconds, then compute it themselves), and merges it
    into the file under the file's lock. An entry of another ``fingerprint`` is recomputed."""
    path = Path(path)
    tag = hashlib.sha1(key.encode()).hexdigest()[:16]
    key_lock = lock_dir(path.parent) / f"{path.name}.{tag}.lock"
    with _held(key_lock, timeout=wait, what=f"{path} entry {key}"):
        entry = _read_json(path).get(key)
        if entry is not None and entry.get("fingerprint") == fingerprint:
            return entry
        entry = {"fingerprint": fingerprint, "value": compute()}
        with file_lock(path):
            data = _read_json(path)
            data[key] = entry
            atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
    return entry
