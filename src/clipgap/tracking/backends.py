"""The tracking backends: TensorBoard event files and Weights & Biases runs.

A backend is opened for one run directory and receives only validated float scalars:
``step(step, scalars)``, ``epoch(epoch, scalars)``, ``summary(0, scalars)`` and
``close(failed=...)``. Each one is a thin adapter over its library's own writer.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path
from typing import Protocol

from clipgap.errors import ConfigError
from clipgap.registry import Registry

__all__ = ["Backend", "TensorBoard", "WandB", "backends"]


class Backend(Protocol):
    kind: str

    def step(self, step: int, scalars: dict[str, float]) -> None: ...

    def epoch(self, epoch: int, scalars: dict[str, float]) -> None: ...

    def summary(self, index: int, scalars: dict[str, float]) -> None: ...

    def close(self, *, failed: bool = False) -> None: ...


backends: Registry[type] = Registry("tracker")


def _import(module: str, *, extra: str, kind: str):
    """Import ``module`` for tracker ``kind``, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = "tensorboard" if kind == "tensorboard" else module.split(".")[0]
        raise ConfigError(
            f"tracking {kind!r} needs the {package} package: pip install 'clipgap[{extra}]'"
        ) from None


@backends.register("tensorboard")
class TensorBoard:
    """``torch.utils.tensorboard.SummaryWriter`` writing to ``RUN_DIR/tb``: step scalars as
    ``train/NAME`` over the global step, epoch scalars as ``epoch/NAME`` over the epoch,
    summary scalars under their own names at step 0, and the run config as text.

    Scalars are kept in memory with their wall time and handed to the writer at the end of an
    epoch when ``hand_over_s`` seconds have passed since the last hand-over, and at the end of
    the run. Each scalar handed to TensorBoard wakes its writer thread, which cost 0.1-3 ms a
    scalar on a loaded CPU: more than a step of a method on cached embeddings. A live
    TensorBoard still sees every epoch of runs whose epochs take longer than ``hand_over_s``.
    """

    kind = "tensorboard"
    hand_over_s = 10.0

    def __init__(self, run_dir: Path, *, name: str, config: dict) -> None:
        tb = _import("torch.utils.tensorboard", extra="tracking", kind=self.kind)
        self.log_dir = Path(run_dir) / "tb"
        self.writer = tb.SummaryWriter(log_dir=str(self.log_dir), max_queue=1000, flush_secs=30)
        self.pending: list[tuple[str, float, int, float]] = []
        self.handed = time.monotonic()
        text = json.dumps({"run": name, **config}, indent=1, sort_keys=True)
        self.writer.add_text("config", f"```json\n{text}\n```", 0)

    def _write(self, prefix: str, index: int, scalars: dict[str, float]) -> None:
        now = time.time()
        self.pending.extend((prefix + key, value, index, now) for key, value in scalars.items())

    def _hand_over(self) -> None:
        for tag, value, index, walltime in self.pending:
            self.writer.add_scalar(tag, value, index, walltime=walltime)
        self.pending.clear()
        self.handed = time.monotonic()

    def step(self, step: int, scalars: dict[str, float]) -> None:
        self._write("train/", step, scalars)

    def epoch(self, epoch: int, scalars: dict[str, float]) -> None:
        self._write("epoch/", epoch, scalars)
        if time.monotonic() - self.handed >= self.hand_over_s:
            self._hand_over()

    def summary(self, index: int, scalars: dict[str, float]) -> None:
        self._write("", index, scalars)
        self._hand_over()
        self.writer.flush()

    def close(self, *, failed: bool = False) -> None:
        self._hand_over()
        self.writer.close()


@backends.register("wandb")
class WandB:
    """A ``wandb.init`` run in ``RUN_DIR/wandb``: step scalars as ``train/NAME`` against
    ``train/step``, epoch scalars as ``epoch/NAME`` against ``epoch``, summary scalars in the
    run summary. Mode from ``WANDB_MODE`` (``online`` when unset; ``offline`` writes the run
    for a later ``wandb sync``), project from ``WANDB_PROJECT`` (``clipgap`` when unset).
    Console capture is off: clipgap's own log is in the run directory."""

    kind = "wandb"

    def __init__(self, run_dir: Path, *, name: str, config: dict) -> None:
        wandb = _import("wandb", extra="wandb", kind=self.kind)
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        mode = os.environ.get("WANDB_MODE") or "online"
        try:
            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT") or "clipgap",
                name=name,
                dir=str(run_dir),
                config=config,
                mode=mode,
                reinit="create_new",
                settings=wandb.Settings(quiet=True, console="off"),
            )
        except wandb.errors.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"tracking 'wandb' (mode {mode}) could not start a run: {first.rstrip('.')} "
                "(or set WANDB_MODE=offline)"
            ) from None
        self.run.define_metric("train/step")
        self.run.define_metric("train/*", step_metric="train/step")
        self.run.define_metric("epoch")
        self.run.define_metric("epoch/*", step_metric="epoch")

    def step(self, step: int, scalars: dict[str, float]) -> None:
        self.run.log({"train/step": step, **{f"train/{k}": v for k, v in scalars.items()}})

    def epoch(self, epoch: int, scalars: dict[str, float]) -> None:
        self.run.log({"epoch": epoch, **{f"epoch/{k}": v for k, v in scalars.items()}})

    def summary(self, index: int, scalars: dict[str, float]) -> None:
        self.run.summary.update(scalars)

    def close(self, *, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)
