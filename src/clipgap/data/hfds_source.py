"""Opening an ``hfds:`` source: a save_to_disk folder, a parquet folder or a hub id.

See :mod:`clipgap.data.hfds` for the rules; these helpers return ``{split: datasets.Dataset}``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from clipgap.data import DataOptions
from clipgap.errors import DataError
from clipgap.paths import cache_dir

DISK_MARKERS = ("dataset_dict.json", "state.json")


def _split_arg(arg: str) -> tuple[str, str | None]:
    """``PATH_OR_ID[:CONFIG]`` (a path that exists as written has no config)."""
    if Path(arg).expanduser().exists() or ":" not in arg:
        return arg, None
    head, _, config = arg.rpartition(":")
    return head, config or None


def open_source(arg: str, options: DataOptions) -> dict[str, Any]:
    """``{split name: datasets.Dataset}`` of a save_to_disk folder, parquet folder or hub id."""
    source, config = _split_arg(arg)
    path = Path(source).expanduser()
    if path.exists():
        if config is not None:
            path = _config_folder(path, config)
        return _local(path)
    if source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise DataError(f"hfds folder {path} does not exist")
    if not options.download:
        raise DataError(
            f"hfds:{arg}: no such folder; to load hub dataset {source!r} pass --download "
            "(data.download: true), which needs the network or the HF cache"
        )
    return _hub(source, config)


def _config_folder(path: Path, config: str) -> Path:
    sub = path / config
    if sub.is_dir():
        return sub
    have = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    raise DataError(
        f"hfds {path}: unknown config {config!r}; configs (subfolders): {', '.join(have) or 'none'}"
    )


def _local(path: Path) -> dict[str, Any]:
    import datasets as hf

    if not path.is_dir():
        raise DataError(f"hfds {path} is a file; expected a save_to_disk or parquet folder")
    if any((path / m).is_file() for m in DISK_MARKERS):
        try:
            loaded = hf.load_from_disk(str(path))
        except (OSError, ValueError) as exc:
            raise DataError(f"hfds {path}: cannot load saved dataset: {first_line(exc)}") from None
        if isinstance(loaded, hf.Dataset):
            return {loaded.split or "train": loaded}
        return dict(loaded)
    files = parquet_splits(path)
    if files:
        where = f"hfds {path}"
        return _quiet_load(where, "parquet", data_files=files, cache_dir=str(cache_dir("hfds")))
    found = sorted(p.name for p in path.iterdir())[:6]
    raise DataError(
        f"hfds {path}: neither a save_to_disk folder (dataset_dict.json or state.json) nor a "
        f"folder of .parquet files; found: {', '.join(found) or 'nothing'}"
    )


def parquet_splits(path: Path) -> dict[str, list[str]]:
    """``{split: [files]}`` of the ``.parquet`` files under ``path``, split named by file name.

    The split is the word a file name starts with (``train-00000-of-00001.parquet``,
    ``test.parquet``, ``validation_1.parquet``), or the parent folder's name for a file whose
    name starts with no letter (``train/0000.parquet``).
    """
    out: dict[str, list[str]] = {}
    for file in sorted(path.rglob("*.parquet")):
        if any(part.startswith(".") for part in file.relative_to(path).parts):
            continue
        word = re.match(r"[A-Za-z]+", file.stem)
        split = word.group(0) if word else file.parent.name
        out.setdefault(split, []).append(str(file))
    return out


def _hub(name: str, config: str | None) -> dict[str, Any]:
    from datasets.exceptions import DatasetNotFoundError

    where = f"hfds:{name}"
    try:
        return _quiet_load(where, name, config)
    except DatasetNotFoundError:
        raise DataError(f"{where}: no such dataset on the Hugging Face hub") from None
    except ConnectionError:
        raise DataError(
            f"{where}: the Hugging Face hub is unreachable (no network, or HF_DATASETS_OFFLINE / "
            "HF_HUB_OFFLINE set and the dataset not in the HF cache); pass a local "
            "save_to_disk or parquet folder instead"
        ) from None
    except ValueError as exc:
        if config is not None and "config" in str(exc).lower():
            raise DataError(f"{where}: unknown config {config!r}: {first_line(exc)}") from None
        raise DataError(f"{where}: {first_line(exc)}") from None


def _quiet_load(where: str, *args, **kwargs) -> dict[str, Any]:
    """``datasets.load_dataset`` without its progress bars (restored afterwards)."""
    from datasets.utils.tqdm import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    shown = not are_progress_bars_disabled()
    disable_progress_bars()
    try:
        import datasets as hf

        return dict(hf.load_dataset(*args, **kwargs))
    except FileNotFoundError as exc:
        if type(exc).__name__ == "DatasetNotFoundError":
            raise
        raise DataError(f"{where}: {first_line(exc)}") from None
    finally:
        if shown:
            enable_progress_bars()


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
