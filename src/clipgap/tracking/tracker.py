"""The :class:`Tracker` of one run, and how a config or flag asks for one
(:func:`tracking_kinds`). What each backend writes: :mod:`clipgap.tracking`."""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from clipgap.errors import ConfigError, suggest
from clipgap.tracking.backends import Backend, backends
from clipgap.tracking.summary import record_summary

log = logging.getLogger(__name__)

__all__ = [
    "KINDS",
    "Tracker",
    "default_tracking",
    "open_tracker",
    "track_run",
    "tracking_kinds",
]

KINDS = tuple(backends.names())


def default_tracking() -> tuple[str, ...]:
    """What is tracked when nothing is asked: TensorBoard where the package is installed (its
    events cost about 1 % of fine-tuning time on the world model), nothing otherwise."""
    return ("tensorboard",) if importlib.util.find_spec("tensorboard") is not None else ()


def tracking_kinds(value, *, where: str = "tracking") -> tuple[str, ...]:
    """The tracker kinds a config value or CLI flag asks for, validated, in order, each once.

    ``value``: None (the default, :func:`default_tracking`), a comma-separated string
    (``"tensorboard,wandb"``; ``""`` or ``"none"`` for no tracking) or a list of names.
    ``where`` names the key or flag in the one-line :class:`ConfigError` for a bad value.
    """
    if value is None:
        return default_tracking()
    if isinstance(value, str):
        names = [] if value.strip().lower() == "none" else value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        names = list(value)
    else:
        raise ConfigError(
            f"{where} must be a list of tracker names ({', '.join(KINDS)}), got {value!r}"
        )
    kinds: list[str] = []
    for name in (n.strip() for n in names):
        if not name:
            continue
        if name not in backends:
            raise ConfigError(
                f"{where}: unknown tracker {name!r}{suggest(name, KINDS)}; "
                f"choose from: {', '.join(KINDS)} (or none)"
            )
        if name not in kinds:
            kinds.append(name)
    return tuple(kinds)


class Tracker:
    """Sends a run's scalars to every open backend; a :class:`clipgap.training.TrainCallback`.

    Use as a context manager (or call :meth:`close`). ``every``: log step scalars on every
    ``every``-th step only (epoch and summary scalars are always logged).
    """

    def __init__(self, backends: Iterable[Backend] = (), *, every: int = 1) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ConfigError(f"tracking every must be an integer >= 1, got {every!r}")
        self.backends = list(backends)
        self.every = every
        self.closed = False

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(b.kind for b in self.backends)

    def log_step(self, step: int, **scalars) -> None:
        """Scalars of optimiser step ``step`` (logged as ``train/NAME``)."""
        self._send("step", int(step), scalars)

    def log_epoch(self, epoch: int, **scalars) -> None:
        """Scalars of epoch ``epoch`` (logged as ``epoch/NAME``; 0 = the starting model)."""
        self._send("epoch", int(epoch), scalars)

    def log_summary(self, **scalars) -> None:
        """Final scalars of the run (logged under their own names)."""
        self._send("summary", 0, scalars)

    def log_record(self, record) -> None:
        """The final numbers of a complete :class:`clipgap.record.RunRecord`."""
        self.log_summary(**record_summary(record))

    # TrainCallback
    def on_step(self, step: int, *, loss: float, lr: float) -> None:
        if step % self.every == 0:
            self.log_step(step, loss=loss, lr=lr)

    def on_epoch(self, epoch: int, stats: dict) -> None:
        self.log_epoch(epoch, **{k: v for k, v in stats.items() if k != "epoch"})

    def _send(self, what: str, index: int, scalars: Mapping) -> None:
        clean = _scalars(scalars)
        if not clean or not self.backends:
            return
        if self.closed:
            raise RuntimeError("tracker is closed")
        for backend in self.backends:
            getattr(backend, what)(index, clean)

    def close(self, *, failed: bool = False) -> None:
        """Flush and close every backend (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for backend in self.backends:
            backend.close(failed=failed)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)


def _scalars(scalars: Mapping) -> dict[str, float]:
    """The numeric, non-None entries of ``scalars`` as floats (booleans and text dropped)."""
    out = {}
    for key, value in scalars.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[str(key)] = float(value)
    return out


def open_tracker(
    kinds: Iterable[str],
    run_dir: str | Path,
    *,
    run_name: str | None = None,
    config: Mapping | None = None,
    every: int = 1,
) -> Tracker:
    """A :class:`Tracker` writing to each of ``kinds`` for the run in ``run_dir``.

    ``run_name`` defaults to the directory's name; ``config`` (the resolved run config) is
    stored with the run. An unknown kind raises a one-line ConfigError listing the valid ones; a
    kind whose package is missing, one naming the ``pip install`` that provides it.
    """
    kinds = tracking_kinds(kinds if isinstance(kinds, str) else list(kinds))
    run_dir = Path(run_dir)
    name = run_name or run_dir.resolve().name
    config = _plain(dict(config or {}))
    opened: list[Backend] = []
    try:
        for kind in kinds:
            opened.append(backends.get(kind)(run_dir, name=name, config=config))
    except BaseException:
        for backend in opened:
            backend.close(failed=True)
        raise
    if opened:
        log.info("tracking %s to %s (%s)", name, run_dir, ", ".join(kinds))
    return Tracker(opened, every=every)


def track_run(kinds: Iterable[str], run_dir: str | Path | None, record_config: Mapping) -> Tracker:
    """The tracker of one study or ``clipgap finetune`` run: named by its directory, with the
    run's resolved config (``RunRecord.config``). No kinds: a tracker that does nothing (then
    ``run_dir`` may be None)."""
    kinds = tracking_kinds(kinds if isinstance(kinds, str) else list(kinds))
    if not kinds:
        return Tracker()
    if run_dir is None:
        raise ConfigError(f"tracking {', '.join(kinds)} needs a run directory")
    return open_tracker(kinds, run_dir, config=record_config)


def _plain(value):
    """``value`` as JSON data (tuples as lists, other objects as text) for the trackers."""
    return json.loads(json.dumps(value, default=str))
